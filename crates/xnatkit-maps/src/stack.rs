//! Frames → a 4-D stack: slices grouped by their position along the slice
//! normal (ImagePositionPatient projected on ImageOrientationPatient's
//! normal), time points by echo time, repetition time or b-value, both
//! from the headers (a T1 fit's recovery times are derived from the
//! repetition times afterwards, in [`crate::timebase`]). Several frames at one slice and time point combine: the
//! arithmetic mean for repeats, the geometric mean for diffusion directions
//! at one b-value (the trace-weighted image, isotropic ADC).

use std::path::Path;

use crate::Error;
use crate::geometry::{Grid, cross, dot, normalised};
use crate::input::{Frame, Pixels, Series, SeriesInfo, Stored};
use crate::timebase::{EchoTrainLength, Origin, Timing};

/// What varies along the fourth axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeAxis {
    EchoTime,
    RecoveryTime,
    BValue,
}

impl TimeAxis {
    fn what(self) -> &'static str {
        match self {
            TimeAxis::EchoTime => "echo time",
            TimeAxis::RecoveryTime => "recovery time",
            TimeAxis::BValue => "b-value",
        }
    }

    fn map(self) -> &'static str {
        match self {
            TimeAxis::EchoTime => "T2",
            TimeAxis::RecoveryTime => "T1",
            TimeAxis::BValue => "ADC",
        }
    }

    fn tags(self) -> &'static str {
        match self {
            TimeAxis::EchoTime => "EchoTime (0018,0081) or EffectiveEchoTime (0018,9082)",
            TimeAxis::RecoveryTime => "RepetitionTime (0018,0080)",
            TimeAxis::BValue => {
                "DiffusionBValue (0018,9087), or GE (0043,1039), Siemens (0019,100C), Philips (2001,1003)"
            }
        }
    }

    fn value(self, frame: &Frame) -> Option<f64> {
        match self {
            TimeAxis::EchoTime => frame.echo_time,
            TimeAxis::RecoveryTime => frame.repetition_time,
            TimeAxis::BValue => frame.b_value,
        }
        .filter(|v| v.is_finite() && *v >= 0.0)
    }
}

/// One slice at one time point.
#[derive(Debug, Clone)]
pub enum Plane {
    /// The one frame there, as stored (no copy, 16-bit stays 16-bit).
    Frame(Pixels),
    /// Several frames combined (mean of repeats, geometric mean of
    /// diffusion directions), or any image on the b-value axis.
    Combined(Vec<f32>),
    /// Released after use (see [`Stack::release_slice`]).
    Released,
}

impl Plane {
    /// The plane's values into `out` (one slice long); a frame left in its
    /// file is read now.
    pub fn values_into(&self, out: &mut [f32]) -> Result<(), Error> {
        match self {
            Plane::Frame(pixels) => {
                pixels.rescale_into(out)?;
                // What summing into a zeroed buffer gave: −0 becomes +0.
                for o in out.iter_mut() {
                    *o += 0.0;
                }
            }
            Plane::Combined(values) => out.copy_from_slice(values),
            Plane::Released => out.fill(0.0),
        }
        Ok(())
    }
}

/// Images on one grid at several time points.
#[derive(Debug, Clone)]
pub struct Stack {
    pub info: SeriesInfo,
    pub grid: Grid,
    pub axis: TimeAxis,
    /// Ascending.
    pub times: Vec<f64>,
    /// `slice + slices · time`.
    pub planes: Vec<Plane>,
    /// Each plane's smallest and largest value, as [`Plane::values_into`]
    /// gives them (indexed like `planes`): found when the planes were
    /// checked, so that Otsu's threshold needs one pass over them, not two.
    pub ranges: Vec<(f32, f32)>,
    /// Frames combined into each time point (of the first slice).
    pub frames_per_time: Vec<usize>,
    /// A DICOM series or a ParaVision scan folder.
    pub origin: Origin,
    /// EchoTrainLength (0018,0091) of the images.
    pub echo_train_length: EchoTrainLength,
    /// Which time `times` holds and where it comes from
    /// ([`crate::timebase::resolve`] makes the T1 choice).
    pub timing: Timing,
    /// The temporary folder of a ParaVision scan's conversion, kept as long
    /// as the planes still read their pixels from its files.
    pub scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Stack {
    pub fn plane(&self, t: usize, s: usize) -> &Plane {
        &self.planes[s + self.grid.slices() * t]
    }

    /// Frees the images of slice `s` at every time point (a fit that is
    /// done with them keeps memory from growing with its results).
    pub fn release_slice(&mut self, s: usize) {
        let slices = self.grid.slices();
        for t in 0..self.times.len() {
            self.planes[s + slices * t] = Plane::Released;
        }
    }
}

/// Tolerance for "the same slice position", mm.
const POSITION_TOLERANCE: f64 = 0.01;

/// Values grouped into clusters: sorted, a value within `tolerance` of a
/// cluster's first (lowest) value joins it.
struct Clusters {
    /// (lowest, highest member) per cluster, ascending and disjoint.
    ranges: Vec<(f64, f64)>,
    /// What each cluster stands for: the mean of its members — for
    /// b-values that differ slightly per direction (a real acquisition's
    /// 990–1000 s/mm²), the b-value at which the geometric mean of the
    /// directions is measured. Exactly equal members keep their value.
    values: Vec<f64>,
}

fn cluster(values: &[f64], tolerance: impl Fn(f64) -> f64) -> Clusters {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut groups: Vec<(f64, f64, f64, usize)> = Vec::new(); // (first, last, sum, count)
    for v in sorted {
        match groups.last_mut() {
            Some((first, last, sum, count)) if (v - *first).abs() <= tolerance(*first) => {
                *last = v;
                *sum += v;
                *count += 1;
            }
            _ => groups.push((v, v, v, 1)),
        }
    }
    Clusters {
        ranges: groups.iter().map(|g| (g.0, g.1)).collect(),
        values: groups
            .iter()
            .map(|&(first, last, sum, count)| {
                if first == last {
                    first
                } else {
                    sum / count as f64
                }
            })
            .collect(),
    }
}

impl Clusters {
    /// The cluster `v` (one of the clustered values) belongs to.
    fn index_of(&self, v: f64) -> Option<usize> {
        self.ranges
            .iter()
            .position(|&(low, high)| low <= v && v <= high)
    }
}

fn time_tolerance(v: f64) -> f64 {
    1e-3 * v.abs().max(1.0)
}

/// Groups `series` into a stack along `axis`; the frames' pixels move into
/// the stack (the series is consumed, so memory holds the images once).
pub fn build_stack(series: Series, axis: TimeAxis) -> Result<Stack, Error> {
    let Series { info, frames } = series;
    let folder = info.folder.clone();
    let first = frames.first().ok_or_else(|| Error::NoImages {
        path: folder.clone(),
    })?;
    let (rows, cols) = (first.rows, first.cols);
    let orientation = first.orientation;
    let spacing = first.spacing;
    let row_dir = normalised([orientation[0], orientation[1], orientation[2]]);
    let col_dir = normalised([orientation[3], orientation[4], orientation[5]]);
    let normal = normalised(cross(row_dir, col_dir));
    for f in &frames {
        let mixed = |reason: String| Error::MixedSeries {
            path: f.source.clone(),
            reason,
        };
        if f.rows != rows || f.cols != cols {
            return Err(mixed(format!(
                "{}×{} pixels, the first image has {rows}×{cols}",
                f.rows, f.cols
            )));
        }
        if f.orientation
            .iter()
            .zip(&orientation)
            .any(|(a, b)| (a - b).abs() > 1e-4)
        {
            return Err(mixed("a different slice orientation".to_owned()));
        }
        if f.spacing
            .iter()
            .zip(&spacing)
            .any(|(a, b)| (a - b).abs() > 1e-4 * b.abs().max(1.0))
        {
            return Err(mixed("a different pixel spacing".to_owned()));
        }
    }
    let echo_train_length = EchoTrainLength::of(
        frames
            .iter()
            .map(|f| (f.echo_train_length, f.source.clone())),
    );
    let mut times_of = Vec::with_capacity(frames.len());
    for f in &frames {
        let v = axis.value(f).ok_or_else(|| Error::MissingTime {
            path: f.source.clone(),
            what: axis.what(),
            map: axis.map(),
            tags: axis.tags(),
        })?;
        times_of.push(v);
    }
    let time_clusters = cluster(&times_of, time_tolerance);
    let times = time_clusters.values.clone();
    if times.len() < 2 {
        return Err(Error::TooFewTimePoints {
            path: folder,
            what: axis.what(),
            map: axis.map(),
            found: times.len(),
            needed: 2,
            values: times
                .iter()
                .map(|t| format!("{t}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let heights: Vec<f64> = frames.iter().map(|f| dot(f.position, normal)).collect();
    let slice_clusters = cluster(&heights, |_| POSITION_TOLERANCE);
    let slices = &slice_clusters.values;
    let mut positions = vec![None; slices.len()];
    let slice_len = rows * cols;
    let geometric = axis == TimeAxis::BValue;
    let cells = slices.len() * times.len();
    let mut counts = vec![0usize; cells];
    let mut sources: Vec<Option<std::path::PathBuf>> = vec![None; cells];
    // Frames stay as stored until every cell is known; a cell with one frame
    // becomes its plane as it is, several are combined below.
    let mut members: Vec<Vec<Pixels>> = (0..cells).map(|_| Vec::new()).collect();
    let mut scratch = vec![0f32; slice_len];
    let thickness = first.thickness;
    for ((frame, height), time) in frames.into_iter().zip(heights).zip(times_of) {
        let (Some(s), Some(t)) = (
            slice_clusters.index_of(height),
            time_clusters.index_of(time),
        ) else {
            continue;
        };
        positions[s].get_or_insert(frame.position);
        let cell = s + slices.len() * t;
        counts[cell] += 1;
        sources[cell].get_or_insert_with(|| frame.source.clone());
        let non_finite = if let Stored::Deferred(_) = frame.pixels.stored {
            // Integers in the file: only the rescale can make them so (the
            // pixels are read when the planes are checked below).
            !(frame.pixels.slope.is_finite() && frame.pixels.intercept.is_finite())
        } else {
            frame.pixels.rescale_into(&mut scratch)?;
            let n = frame.pixels.len().min(slice_len);
            scratch[..n].iter().any(|v| !v.is_finite())
        };
        if non_finite {
            return Err(Error::BadPixels {
                path: frame.source.clone(),
                reason: "NaN or infinite pixel values".to_owned(),
            });
        }
        members[cell].push(frame.pixels);
    }
    let mut planes: Vec<Option<Plane>> = (0..cells).map(|_| None).collect();
    let mut ranges = vec![(0f32, 0f32); cells];
    for s in 0..slices.len() {
        for (t, &time) in times.iter().enumerate() {
            let cell = s + slices.len() * t;
            let count = counts[cell];
            if count == 0 {
                return Err(Error::IncompleteGrid {
                    path: folder,
                    what: axis.what(),
                    slice: s,
                    value: time,
                });
            }
            let frames = std::mem::take(&mut members[cell]);
            let plane = match <[Pixels; 1]>::try_from(frames) {
                Ok([one]) if !geometric && one.len() >= slice_len => Plane::Frame(one),
                Ok(one) => combine(&one, slice_len, geometric, &mut scratch)?,
                Err(several) => combine(&several, slice_len, geometric, &mut scratch)?,
            };
            plane.values_into(&mut scratch)?;
            let (lo, hi) = scratch
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            // min and max pass over NaN: a plane of zeros and NaN is not
            // all zeros.
            if lo == 0.0 && hi == 0.0 && !scratch.iter().any(|v| v.is_nan()) {
                return Err(Error::BadPixels {
                    path: sources[cell].clone().unwrap_or_else(|| folder.clone()),
                    reason: format!(
                        "the image of slice {s} at {} {} is all zeros",
                        axis.what(),
                        time
                    ),
                });
            }
            planes[cell] = Some(plane);
            ranges[cell] = (lo, hi);
        }
    }
    let planes: Vec<Plane> = planes.into_iter().flatten().collect();
    let frames_per_time = (0..times.len()).map(|t| counts[slices.len() * t]).collect();
    let positions = positions.into_iter().flatten().collect();
    let grid = Grid {
        rows,
        cols,
        row_dir,
        col_dir,
        normal,
        spacing,
        positions,
        thickness,
        frame_of_reference: info.frame_of_reference.clone(),
    };
    Ok(Stack {
        info,
        grid,
        axis,
        times,
        planes,
        ranges,
        frames_per_time,
        origin: Origin::Dicom,
        echo_train_length,
        timing: Timing::of_axis(axis),
        scratch: None,
    })
}

/// Several frames at one cell as one plane: the arithmetic mean, or the
/// geometric mean on the b-value axis (summed in frame order, in f32, as
/// the values always were).
fn combine(
    frames: &[Pixels],
    slice_len: usize,
    geometric: bool,
    scratch: &mut [f32],
) -> Result<Plane, Error> {
    let mut out = vec![0f32; slice_len];
    for frame in frames {
        frame.rescale_into(scratch)?;
        let n = frame.len().min(slice_len);
        for (o, &v) in out.iter_mut().zip(&scratch[..n]) {
            *o += if geometric {
                v.max(f32::MIN_POSITIVE).ln()
            } else {
                v
            };
        }
    }
    let scale = 1.0 / frames.len() as f32;
    for o in out.iter_mut() {
        *o = if geometric {
            let v = (*o * scale).exp();
            if v <= f32::MIN_POSITIVE * 2.0 { 0.0 } else { v }
        } else {
            *o * scale
        };
    }
    Ok(Plane::Combined(out))
}

/// Reads a folder: a ParaVision scan folder (it has `pdata/`) is converted
/// to DICOM in a temporary folder first with `xnatkit-paravision`; anything
/// else is read as a DICOM series.
pub fn load(input: &Path, axis: TimeAxis) -> Result<Stack, Error> {
    if input.join("pdata").is_dir() {
        let temp = tempfile::tempdir().map_err(|source| Error::Io {
            path: input.to_owned(),
            source,
        })?;
        let out = temp.path().join("dicom");
        let report = xnatkit_paravision::convert(input, Some(&out), |_| {}).map_err(|e| {
            Error::ParaVision {
                path: input.to_owned(),
                reason: e.to_string(),
            }
        })?;
        // The first reconstruction (pdata/1) is the magnitude series.
        let written = report.written.first().ok_or_else(|| Error::ParaVision {
            path: input.to_owned(),
            reason: report
                .failures
                .first()
                .map(|f| format!("{f:?}"))
                .unwrap_or_else(|| "no reconstruction was converted".to_owned()),
        })?;
        let mut series = crate::input::read_series_lazily(&written.dir)?;
        series.info.folder = input.to_owned();
        for f in &mut series.frames {
            f.source = input.to_owned();
        }
        let mut stack = build_stack(series, axis)?;
        stack.origin = Origin::ParaVision {
            scan: input.to_owned(),
        };
        stack.scratch = Some(std::sync::Arc::new(temp));
        return Ok(stack);
    }
    // Pixels are read a slice at a time as the fit goes (one slice of the
    // input in memory, not the whole series).
    build_stack(crate::input::read_series_lazily(input)?, axis)
}

/// A map on its grid: one value per voxel, and the SOP Instance UIDs of the
/// images at each slice (empty for NIfTI) for RTSTRUCT references.
#[derive(Debug, Clone)]
pub struct MapImage {
    pub name: String,
    pub grid: Grid,
    pub data: Vec<f32>,
    pub slice_sops: Vec<Vec<String>>,
}

/// A single-image-per-slice series (a map) on its grid.
pub fn single_image(series: Series) -> Result<MapImage, Error> {
    let Series { info, frames } = series;
    let first = frames.first().ok_or_else(|| Error::NoImages {
        path: info.folder.clone(),
    })?;
    let (rows, cols) = (first.rows, first.cols);
    let o = first.orientation;
    let row_dir = normalised([o[0], o[1], o[2]]);
    let col_dir = normalised([o[3], o[4], o[5]]);
    let normal = normalised(cross(row_dir, col_dir));
    let mut order: Vec<(f64, usize)> = frames
        .iter()
        .enumerate()
        .map(|(k, f)| (dot(f.position, normal), k))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in order.windows(2) {
        if (pair[1].0 - pair[0].0).abs() <= POSITION_TOLERANCE {
            return Err(Error::MixedSeries {
                path: frames[pair[1].1].source.clone(),
                reason: "two images at one slice position; a map has one image per slice"
                    .to_owned(),
            });
        }
    }
    let mut data = Vec::with_capacity(rows * cols * frames.len());
    let mut positions = Vec::with_capacity(frames.len());
    let mut sops = Vec::with_capacity(frames.len());
    for &(_, k) in &order {
        let f = &frames[k];
        if f.rows != rows || f.cols != cols || f.orientation != o {
            return Err(Error::MixedSeries {
                path: f.source.clone(),
                reason: "images of different size or orientation".to_owned(),
            });
        }
        data.extend(f.pixels.to_f32()?);
        positions.push(f.position);
        sops.push(vec![f.sop_instance_uid.clone()]);
    }
    let grid = Grid {
        rows,
        cols,
        row_dir,
        col_dir,
        normal,
        spacing: first.spacing,
        positions,
        thickness: first.thickness,
        frame_of_reference: info.frame_of_reference.clone(),
    };
    let name = info.series_description.clone();
    Ok(MapImage {
        name,
        grid,
        data,
        slice_sops: sops,
    })
}
