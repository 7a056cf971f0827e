//! Opening a byte stream as a DICOM data set: preamble / `DICM` / file meta group
//! detection, raw data sets without meta group, and the transfer syntax to parse with.
//!
//! dicom-object's `OpenFileOptions` does most of this, but it cannot read data sets
//! without a file meta group and hides the byte position, which we need to tell a
//! truncated file ("truncated at byte N") from a malformed one.

use std::cell::Cell;
use std::io::{Cursor, Read};
use std::rc::Rc;

use dicom_encoding::transfer_syntax::{Codec, TransferSyntax, TransferSyntaxIndex};
use dicom_object::meta::FileMetaTable;
use dicom_parser::dataset::read::DataSetReaderOptions;
use dicom_parser::{DataSetReader, DynStatefulDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::Error;

/// Implicit VR Little Endian, the default transfer syntax of DICOM.
pub(crate) const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub(crate) const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
pub(crate) const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";

/// How far the parser has read in the underlying stream, shared with the reader
/// that counts it (the parser owns the reader, so the count lives outside).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    consumed: Cell<u64>,
    reached_end: Cell<bool>,
}

impl Progress {
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed.get()
    }
    pub(crate) fn reached_end(&self) -> bool {
        self.reached_end.get()
    }
}

struct CountingReader<R> {
    inner: R,
    progress: Rc<Progress>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.progress.reached_end.set(true);
        }
        self.progress
            .consumed
            .set(self.progress.consumed.get() + n as u64);
        Ok(n)
    }
}

pub(crate) type Tokens<'r> = DataSetReader<DynStatefulDecoder<Box<dyn Read + 'r>>>;

/// A data set ready to be walked token by token.
pub(crate) struct OpenedDataSet<'r> {
    pub transfer_syntax: String,
    pub meta: Option<FileMetaTable>,
    pub tokens: Tokens<'r>,
    pub progress: Rc<Progress>,
    /// False when the stream is decompressed on the fly (deflate): then byte
    /// positions of the parser do not match positions in the file.
    pub positions_are_file_offsets: bool,
}

/// Opens `reader` (a whole DICOM file, with or without preamble and meta group).
pub(crate) fn open_data_set<'r>(
    reader: impl Read + 'r,
    name: &str,
) -> Result<OpenedDataSet<'r>, Error> {
    let progress = Rc::new(Progress::default());
    let mut counted = CountingReader {
        inner: reader,
        progress: Rc::clone(&progress),
    };
    let mut head = Vec::with_capacity(132);
    (&mut counted)
        .take(132)
        .read_to_end(&mut head)
        .map_err(|source| Error::Io {
            name: name.to_owned(),
            source,
        })?;

    let meta_at = if head.len() >= 132 && &head[128..132] == b"DICM" {
        Some(128)
    } else if head.starts_with(b"DICM") {
        Some(0)
    } else {
        None
    };

    let (ts_uid, meta, rest): (String, Option<FileMetaTable>, Box<dyn Read + 'r>) = match meta_at {
        Some(offset) => {
            let mut stream = Cursor::new(head.split_off(offset)).chain(counted);
            let meta = FileMetaTable::from_reader(&mut stream).map_err(|err| {
                if progress.reached_end() {
                    Error::Truncated {
                        name: name.to_owned(),
                        offset: progress.consumed(),
                    }
                } else {
                    Error::Malformed {
                        name: name.to_owned(),
                        detail: format!("file meta group: {err}"),
                    }
                }
            })?;
            (
                meta.transfer_syntax().to_owned(),
                Some(meta),
                Box::new(stream),
            )
        }
        None => {
            let ts = guess_raw_transfer_syntax(&head).ok_or_else(|| Error::NotDicom {
                name: name.to_owned(),
                reason: if head.is_empty() {
                    "the file is empty".to_owned()
                } else {
                    "no DICM marker and no valid implicit-VR group".to_owned()
                },
            })?;
            (
                ts.to_owned(),
                None,
                Box::new(Cursor::new(head).chain(counted)),
            )
        }
    };

    let ts: &TransferSyntax = TransferSyntaxRegistry
        .get(&ts_uid)
        .filter(|ts| !ts.is_unsupported())
        .ok_or_else(|| Error::UnsupportedTransferSyntax {
            name: name.to_owned(),
            uid: ts_uid.clone(),
        })?;
    let (source, positions_are_file_offsets): (Box<dyn Read + 'r>, bool) = match ts.codec() {
        Codec::Dataset(Some(adapter)) => (adapter.adapt_reader(rest), false),
        _ => (rest, true),
    };
    let tokens = DataSetReader::new_with_ts_options(source, ts, DataSetReaderOptions::default())
        .map_err(|err| Error::Malformed {
            name: name.to_owned(),
            detail: err.to_string(),
        })?;
    Ok(OpenedDataSet {
        transfer_syntax: ts_uid,
        meta,
        tokens,
        progress,
        positions_are_file_offsets,
    })
}

/// Recognises a data set written without preamble and meta group (old ACR-NEMA style
/// files, some PACS exports) by its first element, which must be in group 0x0008
/// (or 0x0002): anything else is far more likely to be some other file type.
fn guess_raw_transfer_syntax(head: &[u8]) -> Option<&'static str> {
    if head.len() < 8 {
        return None;
    }
    let group_le = u16::from_le_bytes([head[0], head[1]]);
    let group_be = u16::from_be_bytes([head[0], head[1]]);
    let explicit_vr = is_vr(&head[4..6]);
    let plausible_group = |g: u16| g == 0x0008 || g == 0x0002;
    if plausible_group(group_le) && explicit_vr {
        Some(EXPLICIT_VR_LE)
    } else if plausible_group(group_be) && group_be != group_le && explicit_vr {
        Some(EXPLICIT_VR_BE)
    } else if plausible_group(group_le) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        // The first elements of group 0008 are short strings; a huge length means
        // these bytes only happen to start like a tag.
        (len < 0x1_0000 || len == u32::MAX).then_some(IMPLICIT_VR_LE)
    } else {
        None
    }
}

fn is_vr(bytes: &[u8]) -> bool {
    let Ok(code) = <[u8; 2]>::try_from(bytes) else {
        return false;
    };
    dicom_core::VR::from_binary(code).is_some()
}

/// Maps a parser error to ours: an error after the stream ended is truncation.
pub(crate) fn parse_error(progress: &Progress, name: &str, err: impl std::fmt::Display) -> Error {
    if progress.reached_end() {
        Error::Truncated {
            name: name.to_owned(),
            offset: progress.consumed(),
        }
    } else {
        Error::Malformed {
            name: name.to_owned(),
            detail: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_set_kinds_are_recognised() {
        // (0008,0005) CS len 10, explicit LE
        let explicit = [0x08, 0x00, 0x05, 0x00, b'C', b'S', 0x0a, 0x00];
        assert_eq!(guess_raw_transfer_syntax(&explicit), Some(EXPLICIT_VR_LE));
        let big = [0x00, 0x08, 0x00, 0x05, b'C', b'S', 0x00, 0x0a];
        assert_eq!(guess_raw_transfer_syntax(&big), Some(EXPLICIT_VR_BE));
        let implicit = [0x08, 0x00, 0x05, 0x00, 0x0a, 0x00, 0x00, 0x00];
        assert_eq!(guess_raw_transfer_syntax(&implicit), Some(IMPLICIT_VR_LE));
        assert_eq!(guess_raw_transfer_syntax(b"hello world, not dicom"), None);
        assert_eq!(guess_raw_transfer_syntax(b"PK\x03\x04zipzip"), None);
    }
}
