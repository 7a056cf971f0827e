//! Recognising archive formats by content, because upload file names and
//! content types from clients are unreliable.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::Error;

/// Archive formats this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    /// PKZIP, including zip64.
    Zip,
    /// Uncompressed POSIX/GNU tar.
    Tar,
    /// Gzip-compressed tar (`.tar.gz`, `.tgz`).
    TarGz,
}

/// Bytes needed to see every signature (the tar magic sits at 257..262).
pub const SNIFF_LEN: usize = 512;

const TAR_MAGIC_OFFSET: usize = 257;

/// Detects the kind from the first bytes: a zip local-file header (or the
/// end-of-central-directory record of an empty zip), the gzip magic, or the
/// `ustar` magic at offset 257. Any gzip stream is reported as `TarGz`; the
/// tar reader then rejects gzipped non-tar data.
pub fn sniff_archive_kind(first_bytes: &[u8]) -> Option<ArchiveKind> {
    if first_bytes.starts_with(b"PK\x03\x04") || first_bytes.starts_with(b"PK\x05\x06") {
        return Some(ArchiveKind::Zip);
    }
    if first_bytes.starts_with(&[0x1f, 0x8b]) {
        return Some(ArchiveKind::TarGz);
    }
    let magic = first_bytes.get(TAR_MAGIC_OFFSET..TAR_MAGIC_OFFSET + 5);
    if magic == Some(b"ustar") {
        return Some(ArchiveKind::Tar);
    }
    None
}

/// Reads the first [`SNIFF_LEN`] bytes of `path` and sniffs them.
pub fn sniff_file(path: &Path) -> Result<Option<ArchiveKind>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    file.take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e: io::Error| Error::io(path, e))?;
    Ok(sniff_archive_kind(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_signatures() {
        assert_eq!(
            sniff_archive_kind(b"PK\x03\x04rest"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(sniff_archive_kind(b"PK\x05\x06"), Some(ArchiveKind::Zip));
        assert_eq!(
            sniff_archive_kind(&[0x1f, 0x8b, 8, 0]),
            Some(ArchiveKind::TarGz)
        );
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(sniff_archive_kind(&tar), Some(ArchiveKind::Tar));
        tar[257..265].copy_from_slice(b"ustar  \0");
        assert_eq!(sniff_archive_kind(&tar), Some(ArchiveKind::Tar));
    }

    #[test]
    fn rejects_other_data() {
        assert_eq!(sniff_archive_kind(b""), None);
        assert_eq!(sniff_archive_kind(b"P"), None);
        assert_eq!(sniff_archive_kind(b"DICM"), None);
        assert_eq!(sniff_archive_kind(&[0u8; 512]), None);
        assert_eq!(sniff_archive_kind(&[0u8; 260]), None);
    }
}
