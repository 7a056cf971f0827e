//! Reading the attributes the archive needs from one instance, from the header only:
//! parsing stops at the pixel data element, whose value is never read.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use dicom_core::value::PrimitiveValue;
use dicom_core::{Length, Tag};
use dicom_dictionary_std::tags;
use dicom_parser::dataset::DataToken;

use crate::error::Error;

const STUDY_COMMENTS: Tag = Tag(0x0032, 0x4000);
use crate::source::{OpenedDataSet, open_data_set, parse_error};

/// Everything the archive needs from one instance.
///
/// Text values are trimmed of DICOM padding; empty values are `None`. Dates are
/// `YYYYMMDD` (old `YYYY.MM.DD` values are normalised), times are as stored (`HHMMSS.ffffff`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DicomHeader {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    /// UID of the transfer syntax the data set is encoded in.
    pub transfer_syntax: String,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub series_description: Option<String>,
    pub study_description: Option<String>,
    pub study_id: Option<String>,
    pub accession_number: Option<String>,
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub patient_age: Option<String>,
    pub patient_weight: Option<String>,
    pub patient_comments: Option<String>,
    pub study_comments: Option<String>,
    pub additional_patient_history: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub series_date: Option<String>,
    pub series_time: Option<String>,
    pub acquisition_date: Option<String>,
    pub acquisition_time: Option<String>,
    pub manufacturer: Option<String>,
    pub manufacturer_model_name: Option<String>,
    pub station_name: Option<String>,
    pub institution_name: Option<String>,
    pub body_part_examined: Option<String>,
    pub magnetic_field_strength: Option<String>,
    pub operators_name: Option<String>,
    pub referring_physician_name: Option<String>,
    pub protocol_name: Option<String>,
    pub image_type: Option<String>,
    pub software_versions: Option<String>,
    pub device_serial_number: Option<String>,
}

impl DicomHeader {
    fn assign(&mut self, tag: Tag, value: &PrimitiveValue) {
        let text = || text_value(value);
        match tag {
            tags::SOP_CLASS_UID => self.sop_class_uid = text().unwrap_or_default(),
            tags::SOP_INSTANCE_UID => self.sop_instance_uid = text().unwrap_or_default(),
            tags::STUDY_INSTANCE_UID => self.study_instance_uid = text().unwrap_or_default(),
            tags::SERIES_INSTANCE_UID => self.series_instance_uid = text().unwrap_or_default(),
            tags::MODALITY => self.modality = text(),
            tags::SERIES_NUMBER => self.series_number = int_value(value),
            tags::INSTANCE_NUMBER => self.instance_number = int_value(value),
            tags::NUMBER_OF_FRAMES => self.number_of_frames = int_value(value),
            tags::SERIES_DESCRIPTION => self.series_description = text(),
            tags::STUDY_DESCRIPTION => self.study_description = text(),
            tags::STUDY_ID => self.study_id = text(),
            tags::ACCESSION_NUMBER => self.accession_number = text(),
            tags::PATIENT_NAME => self.patient_name = text(),
            tags::PATIENT_ID => self.patient_id = text(),
            tags::PATIENT_BIRTH_DATE => self.patient_birth_date = text().map(normalise_date),
            tags::PATIENT_SEX => self.patient_sex = text(),
            tags::PATIENT_AGE => self.patient_age = text(),
            tags::PATIENT_WEIGHT => self.patient_weight = text(),
            tags::PATIENT_COMMENTS => self.patient_comments = text(),
            // Study Comments is retired in the standard but still routes data in XNAT.
            STUDY_COMMENTS => self.study_comments = text(),
            tags::ADDITIONAL_PATIENT_HISTORY => self.additional_patient_history = text(),
            tags::STUDY_DATE => self.study_date = text().map(normalise_date),
            tags::STUDY_TIME => self.study_time = text(),
            tags::SERIES_DATE => self.series_date = text().map(normalise_date),
            tags::SERIES_TIME => self.series_time = text(),
            tags::ACQUISITION_DATE => self.acquisition_date = text().map(normalise_date),
            tags::ACQUISITION_TIME => self.acquisition_time = text(),
            tags::MANUFACTURER => self.manufacturer = text(),
            tags::MANUFACTURER_MODEL_NAME => self.manufacturer_model_name = text(),
            tags::STATION_NAME => self.station_name = text(),
            tags::INSTITUTION_NAME => self.institution_name = text(),
            tags::BODY_PART_EXAMINED => self.body_part_examined = text(),
            tags::MAGNETIC_FIELD_STRENGTH => self.magnetic_field_strength = text(),
            tags::OPERATORS_NAME => self.operators_name = text(),
            tags::REFERRING_PHYSICIAN_NAME => self.referring_physician_name = text(),
            tags::PROTOCOL_NAME => self.protocol_name = text(),
            tags::IMAGE_TYPE => self.image_type = text(),
            tags::SOFTWARE_VERSIONS => self.software_versions = text(),
            tags::DEVICE_SERIAL_NUMBER => self.device_serial_number = text(),
            _ => {}
        }
    }

    /// Modality, or the one implied by the SOP class when the Modality attribute is
    /// empty (XNAT 1.8.5+ treats an MR SOP class without Modality as MR).
    pub fn effective_modality(&self) -> Option<String> {
        self.modality
            .clone()
            .or_else(|| crate::kind::modality_of_sop_class(&self.sop_class_uid).map(str::to_owned))
    }
}

/// The value as text without DICOM padding; multiple values joined with `\`.
pub(crate) fn text_value(value: &PrimitiveValue) -> Option<String> {
    let text = match value {
        // Private or unknown elements in implicit VR arrive as bytes (VR UN).
        PrimitiveValue::U8(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.to_str().into_owned(),
    };
    let trimmed = text.trim_matches(|c: char| c == ' ' || c == '\0');
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn int_value(value: &PrimitiveValue) -> Option<i64> {
    let text = text_value(value)?;
    let first = text.split('\\').next()?.trim();
    first
        .parse::<i64>()
        .ok()
        .or_else(|| first.parse::<f64>().ok().map(|f| f as i64))
}

fn normalise_date(date: String) -> String {
    if date.len() == 10 && date.as_bytes()[4] == b'.' && date.as_bytes()[7] == b'.' {
        date.replace('.', "")
    } else {
        date
    }
}

/// Reads the header of the DICOM file at `path` (with or without the 128-byte
/// preamble and file meta group). The pixel data value is not read; when its
/// declared length runs past the end of the file the file is reported as truncated.
pub fn read_header(path: &Path) -> Result<DicomHeader, Error> {
    let (reader, name, file_len) = open_dicom_file(path)?;
    read_header_impl(reader, &name, Some(file_len))
}

/// Opens a DICOM file for reading its header: a buffered reader, the name
/// errors carry, and the file's length (to tell a truncated file).
pub(crate) fn open_dicom_file(path: &Path) -> Result<(BufReader<File>, String, u64), Error> {
    let name = path.display().to_string();
    let io = |source| Error::Io {
        name: name.clone(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    Ok((BufReader::with_capacity(64 * 1024, file), name, file_len))
}

/// Reads the header of a DICOM stream (for example a zip entry); `name_for_errors`
/// names it in error messages.
pub fn read_header_from(reader: impl Read, name_for_errors: &str) -> Result<DicomHeader, Error> {
    read_header_impl(reader, name_for_errors, None)
}

fn read_header_impl(
    reader: impl Read,
    name: &str,
    file_len: Option<u64>,
) -> Result<DicomHeader, Error> {
    let mut opened = open_data_set(reader, name)?;
    let mut header = DicomHeader {
        transfer_syntax: opened.transfer_syntax.clone(),
        ..DicomHeader::default()
    };
    let mut depth = 0usize;
    let mut pending: Option<Tag> = None;
    while let Some(token) = opened.tokens.next() {
        let token = token.map_err(|err| parse_error(&opened.progress, name, err))?;
        match token {
            DataToken::SequenceStart { .. } => depth += 1,
            DataToken::SequenceEnd => depth = depth.saturating_sub(1),
            DataToken::PixelSequenceStart if depth == 0 => break,
            DataToken::PixelSequenceStart => depth += 1,
            DataToken::ElementHeader(element) if depth == 0 && element.tag.group() >= 0x7FE0 => {
                check_value_fits(&opened, file_len, element.len, name)?;
                break;
            }
            DataToken::ElementHeader(element) => {
                check_value_fits(&opened, file_len, element.len, name)?;
                pending = (depth == 0).then_some(element.tag);
            }
            DataToken::PrimitiveValue(value) => {
                if let Some(tag) = pending.take() {
                    header.assign(tag, &value);
                }
            }
            _ => {}
        }
    }
    if depth > 0 {
        // The stream ended inside a sequence: it was cut short.
        return Err(Error::Truncated {
            name: name.to_owned(),
            offset: opened.progress.consumed(),
        });
    }
    if header.sop_class_uid.is_empty()
        && let Some(meta) = &opened.meta
    {
        header.sop_class_uid = meta.media_storage_sop_class_uid().to_owned();
    }
    if header.sop_instance_uid.is_empty()
        && let Some(meta) = &opened.meta
    {
        header.sop_instance_uid = meta.media_storage_sop_instance_uid().to_owned();
    }
    for (value, attribute) in [
        (&header.sop_class_uid, "SOPClassUID (0008,0016)"),
        (&header.sop_instance_uid, "SOPInstanceUID (0008,0018)"),
        (&header.study_instance_uid, "StudyInstanceUID (0020,000D)"),
        (&header.series_instance_uid, "SeriesInstanceUID (0020,000E)"),
    ] {
        if value.is_empty() {
            return Err(Error::MissingAttribute {
                name: name.to_owned(),
                attribute,
            });
        }
    }
    Ok(header)
}

/// Largest element value read from a stream of unknown length: the parser
/// allocates a value's declared length up front, so a few corrupt bytes must not
/// make it allocate gigabytes.
const MAX_VALUE_BYTES_IN_STREAM: u64 = 512 * 1024 * 1024;

/// Refuses an element whose declared length runs past the end of the data before
/// its value is read (and allocated).
pub(crate) fn check_value_fits(
    opened: &OpenedDataSet<'_>,
    file_len: Option<u64>,
    len: Length,
    name: &str,
) -> Result<(), Error> {
    let Some(len) = len.get() else { return Ok(()) };
    let len = u64::from(len);
    match file_len {
        Some(file_len) if opened.positions_are_file_offsets => {
            if opened.progress.consumed() + len > file_len {
                return Err(Error::Truncated {
                    name: name.to_owned(),
                    offset: file_len,
                });
            }
        }
        _ => {
            if len > MAX_VALUE_BYTES_IN_STREAM {
                return Err(Error::Malformed {
                    name: name.to_owned(),
                    detail: format!("element of {len} bytes exceeds what this reader accepts"),
                });
            }
        }
    }
    Ok(())
}

/// Reads the headers of many files on up to `jobs` threads (at least one). The
/// result has one entry per path, in the order given; files that are not DICOM
/// carry their error, so the caller can skip them (XNAT's `Ignore-Unparsable`) or fail.
pub fn read_headers_parallel(
    paths: &[PathBuf],
    jobs: usize,
) -> Vec<(PathBuf, Result<DicomHeader, Error>)> {
    let workers = jobs.clamp(1, paths.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<DicomHeader, Error>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(index) else { break };
                    let result = read_header(path);
                    let mut slots = results.lock().unwrap_or_else(|p| p.into_inner());
                    slots[index] = Some(result);
                }
            });
        }
    });
    let slots = results.into_inner().unwrap_or_else(|p| p.into_inner());
    paths
        .iter()
        .cloned()
        .zip(slots)
        .map(|(path, slot)| {
            let result = slot.unwrap_or_else(|| {
                Err(Error::Malformed {
                    name: path.display().to_string(),
                    detail: "header reader thread stopped before this file".to_owned(),
                })
            });
            (path, result)
        })
        .collect()
}
