//! Reading a DICOM series folder into frames: one 2-D image each, with its
//! position, orientation, spacing, echo time, repetition time and b-value,
//! and its pixels as stored with the rescale beside them (16-bit images
//! stay 16-bit in memory; the rescaled value is computed when it is used).
//! Classic single-frame files and enhanced multi-frame files (per-frame and
//! shared functional groups) give the same frames. A map run reads headers
//! only ([`read_series_lazily`]) and leaves a single-frame file's native
//! pixels in the file until they are used, so its memory does not grow
//! with the series. Grouping into slices and time points happens later
//! (`stack`), from these values, never from file order.
//!
//! b-values follow dcm2niix: the standard DiffusionBValue (0018,9087) first;
//! where it is empty, GE (0043,1039) first value, Siemens (0019,100C),
//! Philips (2001,1003).

use std::path::{Path, PathBuf};

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use crate::Error;
use crate::geometry::Vec3;

type Element = dicom_object::mem::InMemElement;

const PER_FRAME_GROUPS: Tag = Tag(0x5200, 0x9230);
const SHARED_GROUPS: Tag = Tag(0x5200, 0x9229);
const PLANE_POSITION: Tag = Tag(0x0020, 0x9113);
const PLANE_ORIENTATION: Tag = Tag(0x0020, 0x9116);
const PIXEL_MEASURES: Tag = Tag(0x0028, 0x9110);
const MR_ECHO: Tag = Tag(0x0018, 0x9114);
const EFFECTIVE_ECHO_TIME: Tag = Tag(0x0018, 0x9082);
const MR_TIMING: Tag = Tag(0x0018, 0x9112);
const MR_DIFFUSION: Tag = Tag(0x0018, 0x9117);
const PIXEL_VALUE_TRANSFORMATION: Tag = Tag(0x0028, 0x9145);
const GE_B_VALUE: Tag = Tag(0x0043, 0x1039);
const SIEMENS_B_VALUE: Tag = Tag(0x0019, 0x100C);
const PHILIPS_B_VALUE: Tag = Tag(0x2001, 0x1003);
const FLOAT_PIXEL_DATA: Tag = Tag(0x7FE0, 0x0008);

/// One 2-D image of the series.
#[derive(Debug, Clone)]
pub struct Frame {
    pub source: PathBuf,
    /// 1-based frame number inside an enhanced multi-frame file.
    pub frame_number: Option<usize>,
    pub sop_instance_uid: String,
    pub position: Vec3,
    pub orientation: [f64; 6],
    /// `[between rows, between columns]`, mm.
    pub spacing: [f64; 2],
    pub thickness: Option<f64>,
    pub rows: usize,
    pub cols: usize,
    /// ms
    pub echo_time: Option<f64>,
    /// ms
    pub repetition_time: Option<f64>,
    /// EchoTrainLength (0018,0091): echoes per excitation (the T1 fit's
    /// recovery time base subtracts the echo train from the TR).
    pub echo_train_length: Option<f64>,
    /// s/mm²
    pub b_value: Option<f64>,
    /// Stored values, row by row, and the rescale.
    pub pixels: Pixels,
}

/// Stored pixel values of one frame, before the rescale, in their own type
/// (a 16-bit series takes a quarter of the memory of f64 values).
#[derive(Debug, Clone)]
pub enum Stored {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    /// Not read yet: read from its file each time it is used
    /// ([`read_series_lazily`]).
    Deferred(DeferredPixels),
}

/// The pixel data of a single-frame file with native (uncompressed)
/// pixels, left in the file: a map run then holds one slice of its input
/// at a time, not the whole series.
#[derive(Debug, Clone)]
pub struct DeferredPixels {
    path: PathBuf,
    len: usize,
    /// How the header says the pixels are stored, for reading them
    /// without parsing the file again ([`DeferredPixels::rescale_into`]).
    layout: Option<NativeLayout>,
}

/// Native little-endian pixel data as the header describes it.
#[derive(Debug, Clone, Copy)]
struct NativeLayout {
    bits: u32,
    signed: bool,
    explicit_vr: bool,
    /// Rows × Columns × frames: the values the element holds.
    values: usize,
}

impl NativeLayout {
    /// The PixelData element's length: the values' bytes, padded to even.
    fn value_bytes(&self) -> usize {
        let bytes = self.values * (self.bits / 8) as usize;
        bytes + bytes % 2
    }

    /// The element header as it stands before the values when PixelData
    /// is the file's last element (as nearly every writer leaves it).
    fn element_header(&self) -> Option<Vec<u8>> {
        let length = u32::try_from(self.value_bytes()).ok()?.to_le_bytes();
        let mut header = vec![0xE0, 0x7F, 0x10, 0x00];
        if self.explicit_vr {
            header.extend_from_slice(if self.bits == 8 { b"OB" } else { b"OW" });
            header.extend_from_slice(&[0, 0]);
        }
        header.extend_from_slice(&length);
        Some(header)
    }
}

impl DeferredPixels {
    /// The rescaled values into `out` (as many as both have).
    ///
    /// The header was parsed when the series was read; parsing the whole
    /// file again for each use cost more than the fit of its voxels. When
    /// the file ends with the PixelData element the header described
    /// (its tag, VR and exact length right before the last bytes), those
    /// bytes are read and converted directly; any other layout is parsed
    /// whole by dicom-rs as before.
    fn rescale_into(&self, slope: f64, intercept: f64, out: &mut [f32]) -> Result<(), Error> {
        if let Some(layout) = self.layout
            && let Some((bytes, at)) = self.tail(layout)
        {
            // Converted straight from the file's bytes: no stored copy.
            let values = &bytes[at..];
            let n = self.len.min(out.len());
            let out = &mut out[..n];
            let rescale = |v: f64| (v * slope + intercept) as f32;
            let converted = match (layout.bits, layout.signed) {
                (8, false) => convert::<1>(values, out, |b| rescale(f64::from(b[0]))),
                (8, true) => convert::<1>(values, out, |b| rescale(f64::from(b[0] as i8))),
                (16, false) => {
                    convert::<2>(values, out, |b| rescale(f64::from(u16::from_le_bytes(b))))
                }
                (16, true) => {
                    convert::<2>(values, out, |b| rescale(f64::from(i16::from_le_bytes(b))))
                }
                (32, false) => {
                    convert::<4>(values, out, |b| rescale(f64::from(u32::from_le_bytes(b))))
                }
                (32, true) => {
                    convert::<4>(values, out, |b| rescale(f64::from(i32::from_le_bytes(b))))
                }
                _ => false,
            };
            if converted {
                return Ok(());
            }
        }
        let loaded = Pixels {
            stored: self.load()?,
            slope,
            intercept,
        };
        loaded.rescale_into(out)
    }

    /// The file's bytes from the PixelData element's header on, and where
    /// the values start in them, when PixelData is the file's last element
    /// as the header described it; `None` for any other layout or a read
    /// error (the full parse then reports what is wrong).
    fn tail(&self, layout: NativeLayout) -> Option<(Vec<u8>, usize)> {
        use std::io::{Read, Seek, SeekFrom};
        let header = layout.element_header()?;
        let value_bytes = layout.value_bytes();
        let mut file = std::fs::File::open(&self.path).ok()?;
        let file_len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        let start = file_len.checked_sub(value_bytes + header.len())?;
        file.seek(SeekFrom::Start(start as u64)).ok()?;
        let mut bytes = vec![0u8; header.len() + value_bytes];
        file.read_exact(&mut bytes).ok()?;
        if bytes[..header.len()] != header[..] {
            return None;
        }
        Some((bytes, header.len()))
    }

    /// The stored values, read from the file now.
    pub fn load(&self) -> Result<Stored, Error> {
        let object = OpenFileOptions::new()
            .open_file(&self.path)
            .map_err(|e| Error::Dicom {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        let transfer_syntax = object.meta().transfer_syntax().trim_end_matches('\0');
        all_pixels(&self.path, &object, transfer_syntax, self.len)
    }
}

macro_rules! each_stored {
    ($stored:expr, $values:ident => $body:expr, $deferred:ident => $otherwise:expr) => {
        match $stored {
            Stored::U8($values) => $body,
            Stored::I8($values) => $body,
            Stored::U16($values) => $body,
            Stored::I16($values) => $body,
            Stored::U32($values) => $body,
            Stored::I32($values) => $body,
            Stored::F32($values) => $body,
            Stored::Deferred($deferred) => $otherwise,
        }
    };
}

impl Stored {
    pub fn len(&self) -> usize {
        each_stored!(self, v => v.len(), d => d.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn truncate(&mut self, n: usize) {
        each_stored!(self, v => v.truncate(n), d => d.len = d.len.min(n))
    }

    /// Values `from..to` as their own frame.
    fn range(&self, from: usize, to: usize) -> Stored {
        match self {
            Stored::U8(v) => Stored::U8(v[from..to].to_vec()),
            Stored::I8(v) => Stored::I8(v[from..to].to_vec()),
            Stored::U16(v) => Stored::U16(v[from..to].to_vec()),
            Stored::I16(v) => Stored::I16(v[from..to].to_vec()),
            Stored::U32(v) => Stored::U32(v[from..to].to_vec()),
            Stored::I32(v) => Stored::I32(v[from..to].to_vec()),
            Stored::F32(v) => Stored::F32(v[from..to].to_vec()),
            // Only single-frame files are deferred, and they are not split.
            Stored::Deferred(d) => Stored::Deferred(DeferredPixels {
                path: d.path.clone(),
                len: to.min(d.len).saturating_sub(from),
                layout: if from == 0 { d.layout } else { None },
            }),
        }
    }
}

/// A frame's pixels: stored values and the rescale. The value of a pixel
/// is `(stored · slope + intercept)` in f64, rounded to f32.
#[derive(Debug, Clone)]
pub struct Pixels {
    pub stored: Stored,
    pub slope: f64,
    pub intercept: f64,
}

impl Pixels {
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// The rescaled values into `out` (as many as both have); a deferred
    /// frame is read from its file now.
    pub fn rescale_into(&self, out: &mut [f32]) -> Result<(), Error> {
        let (slope, intercept) = (self.slope, self.intercept);
        each_stored!(&self.stored, values => {
            for (o, &v) in out.iter_mut().zip(values.iter()) {
                *o = (v as f64 * slope + intercept) as f32;
            }
        }, deferred => return deferred.rescale_into(slope, intercept, out));
        Ok(())
    }

    /// The rescaled values.
    pub fn to_f32(&self) -> Result<Vec<f32>, Error> {
        let mut out = vec![0f32; self.len()];
        self.rescale_into(&mut out)?;
        Ok(out)
    }
}

/// What the series is, for the derived series written beside it.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    pub folder: PathBuf,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub frame_of_reference: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: String,
    /// Patient, study and equipment attributes copied into derived series.
    pub header: InMemDicomObject,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub info: SeriesInfo,
    pub frames: Vec<Frame>,
}

/// Patient/study module attributes a derived series in the same study keeps.
const COPIED: &[Tag] = &[
    tags::SPECIFIC_CHARACTER_SET,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::PATIENT_AGE,
    tags::PATIENT_WEIGHT,
    tags::PATIENT_SPECIES_DESCRIPTION,
    tags::ANATOMICAL_ORIENTATION_TYPE,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::STUDY_ID,
    tags::STUDY_DESCRIPTION,
    tags::ACCESSION_NUMBER,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::FRAME_OF_REFERENCE_UID,
    tags::POSITION_REFERENCE_INDICATOR,
    tags::PATIENT_POSITION,
    tags::MANUFACTURER,
    tags::INSTITUTION_NAME,
    tags::MAGNETIC_FIELD_STRENGTH,
];

/// Files under `folder` (recursively), sorted by path so that errors and
/// warnings come in a stable order.
fn files_under(folder: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the file carries the `DICM` magic at byte 128 (a Part 10 file):
/// such a file that does not parse is an error, anything else is skipped.
fn has_dicm_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok()
        && &buf[128..132] == b"DICM"
}

/// Reads every image of the one series in `folder`.
pub fn read_series(folder: &Path) -> Result<Series, Error> {
    read_series_with(folder, false)
}

/// [`read_series`] that leaves the pixels of single-frame files with native
/// pixel data in their files ([`Stored::Deferred`]): their headers are read
/// now, their pixels when used. Multi-frame, float and compressed files are
/// read whole as before.
pub fn read_series_lazily(folder: &Path) -> Result<Series, Error> {
    read_series_with(folder, true)
}

/// Transfer syntaxes whose pixel data [`all_pixels`] reads as they are.
const NATIVE_LITTLE_ENDIAN: [&str; 2] = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"];

fn read_series_with(folder: &Path, lazily: bool) -> Result<Series, Error> {
    let files = if folder.is_file() {
        vec![folder.to_owned()]
    } else {
        files_under(folder)?
    };
    let mut frames = Vec::new();
    let mut info: Option<SeriesInfo> = None;
    for path in files {
        let options = if lazily {
            OpenFileOptions::new().read_until(tags::PIXEL_DATA)
        } else {
            OpenFileOptions::new()
        };
        let mut object = match options.open_file(&path) {
            Ok(o) => o,
            Err(e) => {
                if has_dicm_magic(&path) {
                    return Err(Error::Dicom {
                        path,
                        reason: e.to_string(),
                    });
                }
                continue;
            }
        };
        let mut defer = false;
        if lazily {
            // Only the header was read: the pixels stay in the file when the
            // file is one native frame, else it is read whole after all.
            let frames = first_number(&object, tags::NUMBER_OF_FRAMES).unwrap_or(1.0);
            let ts = object.meta().transfer_syntax().trim_end_matches('\0');
            defer = frames <= 1.0
                && element(&object, FLOAT_PIXEL_DATA).is_none()
                && element(&object, tags::ROWS).is_some()
                && NATIVE_LITTLE_ENDIAN.contains(&ts);
            if !defer {
                object = OpenFileOptions::new()
                    .open_file(&path)
                    .map_err(|e| Error::Dicom {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        let has_pixels = defer
            || element(&object, tags::PIXEL_DATA).is_some()
            || element(&object, FLOAT_PIXEL_DATA).is_some();
        if !has_pixels {
            // RTSTRUCTs, presentation states and the like beside the images.
            continue;
        }
        let series_uid = text(&object, tags::SERIES_INSTANCE_UID).unwrap_or_default();
        match &info {
            None => info = Some(series_info(folder, &object, &series_uid)),
            Some(first) if first.series_instance_uid != series_uid => {
                return Err(Error::MixedSeries {
                    path: path.clone(),
                    reason: format!(
                        "SeriesInstanceUID {series_uid} differs from {}",
                        first.series_instance_uid
                    ),
                });
            }
            Some(_) => {}
        }
        let transfer_syntax = object.meta().transfer_syntax().trim_end_matches('\0');
        frames.extend(frames_of(&path, &object, transfer_syntax, defer)?);
    }
    match info {
        Some(info) if !frames.is_empty() => Ok(Series { info, frames }),
        _ => Err(Error::NoImages {
            path: folder.to_owned(),
        }),
    }
}

fn series_info(folder: &Path, object: &InMemDicomObject, series_uid: &str) -> SeriesInfo {
    let mut header = InMemDicomObject::new_empty();
    for &tag in COPIED {
        if let Some(e) = element(object, tag) {
            header.put(e.clone());
        }
    }
    SeriesInfo {
        folder: folder.to_owned(),
        study_instance_uid: text(object, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        series_instance_uid: series_uid.to_owned(),
        frame_of_reference: text(object, tags::FRAME_OF_REFERENCE_UID),
        series_number: numbers(object, tags::SERIES_NUMBER)
            .and_then(|v| v.first().copied())
            .map(|v| v as i64),
        series_description: text(object, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        header,
    }
}

// `get`, not `element_opt`: dicom-object builds the error of a missing
// element (which `element_opt` then turns into `None`) with a captured
// backtrace, an unwind of the stack that costs more than reading the
// element and maps the binary's unwind tables into memory.
pub(crate) fn element(object: &InMemDicomObject, tag: Tag) -> Option<&Element> {
    object.get(tag)
}

pub(crate) fn text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = element(object, tag)?;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_owned())
}

/// Numbers of an element, also when it was read as UN (implicit VR private
/// tags): then the bytes are decimal text, or one 4-byte float (Philips FL).
pub(crate) fn numbers(object: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let e = element(object, tag)?;
    let values = if matches!(e.vr(), VR::UN | VR::OB) {
        let bytes = e.to_bytes().ok()?;
        let as_text = String::from_utf8_lossy(&bytes);
        let parsed: Option<Vec<f64>> = as_text
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .split('\\')
            .map(|s| s.trim().parse::<f64>().ok())
            .collect();
        match parsed {
            Some(v) => v,
            None if bytes.len() == 4 => {
                vec![f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as f64]
            }
            None => return None,
        }
    } else {
        e.to_multi_float64().ok()?
    };
    (!values.is_empty() && values.iter().all(|v| v.is_finite())).then_some(values)
}

fn first_number(object: &InMemDicomObject, tag: Tag) -> Option<f64> {
    numbers(object, tag).and_then(|v| v.first().copied())
}

/// The first item of sequence `seq` in `object`.
fn item(object: &InMemDicomObject, seq: Tag) -> Option<&InMemDicomObject> {
    element(object, seq)?.items()?.first()
}

/// b-value as dcm2niix reads it from classic images.
fn b_value(object: &InMemDicomObject) -> Option<f64> {
    if let Some(b) = first_number(object, tags::DIFFUSION_B_VALUE) {
        return Some(b);
    }
    if let Some(b) = first_number(object, GE_B_VALUE) {
        // GE may add 10⁹ to flag a b-value (dcm2niix strips it).
        return Some(if b >= 1e9 { b % 1e9 } else { b });
    }
    first_number(object, SIEMENS_B_VALUE).or_else(|| first_number(object, PHILIPS_B_VALUE))
}

fn frames_of(
    path: &Path,
    object: &InMemDicomObject,
    transfer_syntax: &str,
    defer: bool,
) -> Result<Vec<Frame>, Error> {
    let missing = |what: &'static str, hint: &'static str| Error::MissingAttribute {
        path: path.to_owned(),
        what,
        hint,
    };
    let rows = first_number(object, tags::ROWS)
        .ok_or_else(|| missing("Rows (0028,0010)", "the file is not an image"))?
        as usize;
    let cols = first_number(object, tags::COLUMNS)
        .ok_or_else(|| missing("Columns (0028,0011)", "the file is not an image"))?
        as usize;
    let samples = first_number(object, tags::SAMPLES_PER_PIXEL).unwrap_or(1.0);
    if samples != 1.0 {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            reason: "colour images cannot be fitted; pass the magnitude series".to_owned(),
        });
    }
    let count = first_number(object, tags::NUMBER_OF_FRAMES)
        .unwrap_or(1.0)
        .max(1.0) as usize;
    let n = rows * cols;
    let mut pixels = if defer {
        let bits = first_number(object, tags::BITS_ALLOCATED).unwrap_or(16.0);
        let layout = [8.0, 16.0, 32.0].contains(&bits).then(|| NativeLayout {
            bits: bits as u32,
            signed: first_number(object, tags::PIXEL_REPRESENTATION).unwrap_or(0.0) == 1.0,
            explicit_vr: transfer_syntax == NATIVE_LITTLE_ENDIAN[1],
            values: n * count,
        });
        Stored::Deferred(DeferredPixels {
            path: path.to_owned(),
            len: n * count,
            layout,
        })
    } else {
        all_pixels(path, object, transfer_syntax, n * count)?
    };
    // One frame (the usual case) keeps its buffer; frames of a multi-frame
    // file are split into their own.
    let mut single = (count == 1).then(|| std::mem::replace(&mut pixels, Stored::U8(Vec::new())));
    let per_frame: Vec<&InMemDicomObject> = element(object, PER_FRAME_GROUPS)
        .and_then(|e| e.items())
        .map(|items| items.iter().collect())
        .unwrap_or_default();
    let shared = item(object, SHARED_GROUPS);
    let sop = text(object, tags::SOP_INSTANCE_UID).unwrap_or_default();
    let enhanced = !per_frame.is_empty() || shared.is_some();
    let mut frames = Vec::with_capacity(count);
    for k in 0..count {
        // Functional groups: per-frame item first, then the shared item,
        // then the top level (classic files have only that).
        let groups: Vec<&InMemDicomObject> = per_frame
            .get(k)
            .copied()
            .into_iter()
            .chain(shared)
            .collect();
        let lookup = |seq: Tag, tag: Tag| -> Option<Vec<f64>> {
            groups
                .iter()
                .find_map(|g| item(g, seq).and_then(|i| numbers(i, tag)))
                .or_else(|| numbers(object, tag))
        };
        let position = lookup(PLANE_POSITION, tags::IMAGE_POSITION_PATIENT)
            .filter(|v| v.len() == 3)
            .ok_or_else(|| {
                missing(
                    "ImagePositionPatient (0020,0032)",
                    "maps need the slice geometry",
                )
            })?;
        let orientation = lookup(PLANE_ORIENTATION, tags::IMAGE_ORIENTATION_PATIENT)
            .filter(|v| v.len() == 6)
            .ok_or_else(|| {
                missing(
                    "ImageOrientationPatient (0020,0037)",
                    "maps need the slice geometry",
                )
            })?;
        let spacing = lookup(PIXEL_MEASURES, tags::PIXEL_SPACING)
            .filter(|v| v.len() == 2 && v[0] > 0.0 && v[1] > 0.0)
            .ok_or_else(|| missing("PixelSpacing (0028,0030)", "maps need the pixel size in mm"))?;
        let thickness = lookup(PIXEL_MEASURES, tags::SLICE_THICKNESS).map(|v| v[0]);
        let echo_time = lookup(MR_ECHO, EFFECTIVE_ECHO_TIME)
            .or_else(|| lookup(MR_ECHO, tags::ECHO_TIME))
            .map(|v| v[0]);
        let repetition_time = lookup(MR_TIMING, tags::REPETITION_TIME).map(|v| v[0]);
        let echo_train_length = lookup(MR_TIMING, tags::ECHO_TRAIN_LENGTH).map(|v| v[0]);
        let b = groups
            .iter()
            .find_map(|g| {
                item(g, MR_DIFFUSION).and_then(|i| first_number(i, tags::DIFFUSION_B_VALUE))
            })
            .or_else(|| b_value(object));
        let slope = lookup(PIXEL_VALUE_TRANSFORMATION, tags::RESCALE_SLOPE)
            .map(|v| v[0])
            .filter(|s| *s != 0.0)
            .unwrap_or(1.0);
        let intercept = lookup(PIXEL_VALUE_TRANSFORMATION, tags::RESCALE_INTERCEPT)
            .map(|v| v[0])
            .unwrap_or(0.0);
        let stored = match single.take() {
            Some(all) => all,
            None => pixels.range(k * n, (k + 1) * n),
        };
        frames.push(Frame {
            source: path.to_owned(),
            frame_number: enhanced.then_some(k + 1),
            sop_instance_uid: sop.clone(),
            position: [position[0], position[1], position[2]],
            orientation: [
                orientation[0],
                orientation[1],
                orientation[2],
                orientation[3],
                orientation[4],
                orientation[5],
            ],
            spacing: [spacing[0], spacing[1]],
            thickness,
            rows,
            cols,
            echo_time,
            repetition_time,
            echo_train_length,
            b_value: b,
            pixels: Pixels {
                stored,
                slope,
                intercept,
            },
        });
    }
    Ok(frames)
}

/// Stored pixel values of every frame (before rescale), in their own type.
fn all_pixels(
    path: &Path,
    object: &InMemDicomObject,
    transfer_syntax: &str,
    expected: usize,
) -> Result<Stored, Error> {
    let unsupported = |reason: String| Error::Unsupported {
        path: path.to_owned(),
        reason,
    };
    if let Some(e) = element(object, FLOAT_PIXEL_DATA) {
        let bytes = e
            .to_bytes()
            .map_err(|err| unsupported(format!("float pixel data: {err}")))?;
        let values = Stored::F32(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        );
        return take(path, values, expected);
    }
    let pixel = element(object, tags::PIXEL_DATA).ok_or_else(|| Error::MissingAttribute {
        path: path.to_owned(),
        what: "PixelData (7FE0,0010)",
        hint: "the file is not an image",
    })?;
    if pixel.items().is_some() || pixel.fragments().is_some() {
        return Err(unsupported(format!(
            "compressed pixel data (transfer syntax {transfer_syntax}) is not supported; decompress first (e.g. `gdcmconv --raw` or `dcmdjpeg`)"
        )));
    }
    let bytes = pixel
        .to_bytes()
        .map_err(|err| unsupported(format!("pixel data: {err}")))?;
    let bits = first_number(object, tags::BITS_ALLOCATED).unwrap_or(16.0) as u32;
    let signed = first_number(object, tags::PIXEL_REPRESENTATION).unwrap_or(0.0) == 1.0;
    let values = native_values(bits, signed, &bytes).ok_or_else(|| {
        unsupported(format!(
            "BitsAllocated {bits} is not supported (8, 16 or 32)"
        ))
    })?;
    take(path, values, expected)
}

/// `out`'s values from `bytes`, `N` bytes each, by `value`; false when the
/// bytes hold fewer values than `out`.
fn convert<const N: usize>(bytes: &[u8], out: &mut [f32], value: impl Fn([u8; N]) -> f32) -> bool {
    if bytes.len() / N < out.len() {
        return false;
    }
    for (o, b) in out.iter_mut().zip(bytes.as_chunks::<N>().0) {
        *o = value(*b);
    }
    true
}

/// Native little-endian pixel bytes as their stored values; `None` for a
/// BitsAllocated other than 8, 16 or 32.
fn native_values(bits: u32, signed: bool, bytes: &[u8]) -> Option<Stored> {
    Some(match (bits, signed) {
        (8, false) => Stored::U8(bytes.to_vec()),
        (8, true) => Stored::I8(bytes.iter().map(|&b| b as i8).collect()),
        (16, false) => Stored::U16(
            bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        (16, true) => Stored::I16(
            bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        (32, false) => Stored::U32(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        (32, true) => Stored::I32(
            bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => return None,
    })
}

fn take(path: &Path, mut values: Stored, expected: usize) -> Result<Stored, Error> {
    if values.len() < expected {
        return Err(Error::BadPixels {
            path: path.to_owned(),
            reason: format!(
                "pixel data hold {} values, Rows × Columns × frames need {expected}",
                values.len()
            ),
        });
    }
    values.truncate(expected);
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue};
    use dicom_dictionary_std::uids;
    use dicom_object::FileMetaTableBuilder;

    /// A one-frame 3×3 image, `bits` bits, in `transfer_syntax`; with
    /// DataSetTrailingPadding after the pixels when `trailing`.
    fn write(path: &Path, transfer_syntax: &str, bits: u16, signed: bool, trailing: bool) {
        let mut obj = InMemDicomObject::new_empty();
        let us = |obj: &mut InMemDicomObject, tag, v: u16| {
            obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)))
        };
        us(&mut obj, tags::ROWS, 3);
        us(&mut obj, tags::COLUMNS, 3);
        us(&mut obj, tags::SAMPLES_PER_PIXEL, 1);
        us(&mut obj, tags::BITS_ALLOCATED, bits);
        us(&mut obj, tags::BITS_STORED, bits);
        us(&mut obj, tags::PIXEL_REPRESENTATION, u16::from(signed));
        for (tag, vr, value) in [
            (tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3"),
            (tags::IMAGE_POSITION_PATIENT, VR::DS, "0\\0\\0"),
            (tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"),
            (tags::PIXEL_SPACING, VR::DS, "1\\1"),
        ] {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        }
        let values: [i32; 9] = [0, 1, -2, 300, -400, 5000, 60, -7, 127];
        let pixel_data = match (bits, signed) {
            (8, _) => {
                // Nine bytes, padded to an even length.
                let mut bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
                bytes.push(0);
                DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(bytes))
            }
            (16, false) => DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(values.iter().map(|&v| v as u16).collect()),
            ),
            (16, true) => DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::I16(values.iter().map(|&v| v as i16).collect()),
            ),
            _ => DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U8(values.iter().flat_map(|&v| v.to_le_bytes()).collect()),
            ),
        };
        obj.put(pixel_data);
        if trailing {
            obj.put(DataElement::new(
                Tag(0xFFFC, 0xFFFC),
                VR::OB,
                PrimitiveValue::from(vec![0u8; 4]),
            ));
        }
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(transfer_syntax)
            .media_storage_sop_class_uid(uids::MR_IMAGE_STORAGE)
            .media_storage_sop_instance_uid("1.2.3.4");
        obj.with_meta(meta).unwrap().write_to_file(path).unwrap();
    }

    #[test]
    fn deferred_pixels_read_from_the_file_tail_match_a_full_parse() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (uids::EXPLICIT_VR_LITTLE_ENDIAN, 16, false, false, true),
            (uids::EXPLICIT_VR_LITTLE_ENDIAN, 16, true, false, true),
            (uids::IMPLICIT_VR_LITTLE_ENDIAN, 16, true, false, true),
            (uids::EXPLICIT_VR_LITTLE_ENDIAN, 8, false, false, true),
            (uids::IMPLICIT_VR_LITTLE_ENDIAN, 32, true, false, true),
            // Not the last element: the tail is not read, the file is parsed.
            (uids::EXPLICIT_VR_LITTLE_ENDIAN, 16, false, true, false),
            (uids::IMPLICIT_VR_LITTLE_ENDIAN, 16, true, true, false),
        ];
        for (k, (ts, bits, signed, trailing, from_tail)) in cases.into_iter().enumerate() {
            let folder = dir.path().join(k.to_string());
            std::fs::create_dir(&folder).unwrap();
            write(&folder.join("a.dcm"), ts, bits, signed, trailing);
            let lazy = read_series_lazily(&folder).unwrap();
            let whole = read_series(&folder).unwrap();
            let Stored::Deferred(deferred) = &lazy.frames[0].pixels.stored else {
                panic!("case {k}: not deferred");
            };
            let layout = deferred.layout.unwrap();
            assert_eq!(deferred.tail(layout).is_some(), from_tail, "case {k}");
            let (mut a, mut b) = ([0f32; 9], [0f32; 9]);
            lazy.frames[0].pixels.rescale_into(&mut a).unwrap();
            whole.frames[0].pixels.rescale_into(&mut b).unwrap();
            assert_eq!(a, b, "case {k}");
            assert!(a.iter().any(|&v| v != 0.0), "case {k}");
        }
    }
}
