//! The three parametric maps, every voxel of every slice: slice after slice
//! (each slice's images are released once fitted, so memory does not grow
//! with the results), the voxels of a slice in parallel (std::thread::scope,
//! workers taking blocks of voxels in turn; the workspace has no rayon).
//! The calling thread reads the next slice and stores the previous one's
//! results before it joins the fit of the current one.
//! Results are kept for the fitted voxels only, in an unnamed temporary
//! file (17 bytes a voxel: more than a three-point input takes), slice by
//! slice; output images are read back from it a slice at a time
//! ([`MapSet::image_slice`]). The background is excluded by
//! Otsu's threshold on the brightest time point, as XNAT-PIC does (their
//! mask is per slice on a 16–32-bin histogram; ours is one threshold over
//! the whole volume from xnatkit-qa's 256-bin Otsu).

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::sync::Mutex;

use serde::Serialize;

use crate::Error;
use crate::fit;
use crate::geometry::Grid;
use crate::input::SeriesInfo;
use crate::stack::{Stack, TimeAxis};
use crate::timebase::{TimeBase, Timing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapKind {
    T2,
    T1Sr,
    Adc,
}

impl MapKind {
    pub fn axis(self) -> TimeAxis {
        match self {
            MapKind::T2 => TimeAxis::EchoTime,
            MapKind::T1Sr => TimeAxis::RecoveryTime,
            MapKind::Adc => TimeAxis::BValue,
        }
    }

    /// The quantity's short name: `T2`, `T1`, `ADC`.
    pub fn quantity(self) -> &'static str {
        match self {
            MapKind::T2 => "T2",
            MapKind::T1Sr => "T1",
            MapKind::Adc => "ADC",
        }
    }

    pub fn model(self, offset: bool) -> &'static str {
        match (self, offset) {
            (MapKind::T2, true) => "S(TE) = M0·exp(−TE/T2) + C",
            (MapKind::T2, false) => "S(TE) = M0·exp(−TE/T2)",
            (MapKind::T1Sr, false) => "S(t) = A·(1 − exp(−t/T1))",
            (MapKind::T1Sr, true) => "S(t) = A·(1 − exp(−t/T1)) + C",
            (MapKind::Adc, _) => {
                "S(b) = S0·exp(−b·ADC), directions at one b combined by geometric mean"
            }
        }
    }
}

/// Fit options.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Options {
    /// T2: leave out the first echo (stimulated-echo contamination in MSME).
    pub drop_first_echo: bool,
    /// T1: fit the constant C as well (needs three recovery times or more).
    pub t1_offset: bool,
    /// T1: what t is ([`TimeBase`]); `None` takes the input's default:
    /// recovery for a ParaVision scan folder whose method defines an echo
    /// train, repetition otherwise (docs/maps.md, "Time values").
    pub t1_time_base: Option<TimeBase>,
    /// T1, recovery base, DICOM input: the echo spacing in ms, which no
    /// standard DICOM attribute holds (a ParaVision scan's comes from its
    /// method file).
    pub echo_spacing_ms: Option<f64>,
}

/// One output image on the map grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// File stem, e.g. `T2_map`, `R2_map`, `T2_valid`.
    pub name: String,
    /// What it holds, for DICOM SeriesDescription and the preview.
    pub description: String,
    /// Unit text (`ms`, `1/s`, `mm2/s`, empty for unitless).
    pub unit: String,
    /// Quantity code used when scaling to integers.
    pub scale: Scale,
    pub data: Vec<f32>,
}

/// How an image is stored as 16-bit DICOM integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// A fixed slope (value = stored · slope), e.g. 0.1 ms for T2.
    Fixed(f64),
    /// A slope from the image's maximum (signal amplitudes, residuals).
    FromMaximum,
}

/// The maps of one series, and how they were made.
#[derive(Debug)]
pub struct MapSet {
    pub kind: MapKind,
    pub info: SeriesInfo,
    pub grid: Grid,
    pub model: String,
    /// Which time the time points are, and where they come from.
    pub timing: Timing,
    /// The time points fitted (after dropping the first echo if asked).
    pub times: Vec<f64>,
    pub otsu_threshold: f64,
    pub fitted_voxels: usize,
    pub valid_voxels: usize,
    /// The output images without their data, and which result each holds:
    /// the map itself first, then rate, amplitude, fit-valid mask, residual.
    images: Vec<(Image, Column)>,
    /// The fitted voxels and their results.
    results: Results,
}

/// The results of the fitted voxels, in voxel order, in a temporary file
/// (deleted when closed), and which voxels they are.
#[derive(Debug)]
struct Results {
    file: File,
    /// Voxels inside the Otsu mask (the fitted ones), a bit each, x fastest.
    mask: Vec<u64>,
    /// Records before slice `s` (one more entry than slices).
    slice_start: Vec<u64>,
    slice_len: usize,
}

impl Results {
    /// No slice yet, for `voxels` voxels.
    fn new(voxels: usize, slice_len: usize) -> Result<Results, Error> {
        Ok(Results {
            file: tempfile::tempfile().map_err(|source| Error::Scratch { source })?,
            mask: vec![0; voxels.div_ceil(64)],
            slice_start: vec![0],
            slice_len,
        })
    }

    fn inside(&self, i: usize) -> bool {
        self.mask[i / 64] >> (i % 64) & 1 == 1
    }

    /// The voxels fitted.
    fn fitted(&self) -> usize {
        self.mask.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Appends the next slice's results: those of its voxels in the mask,
    /// in order (`inside` holds their in-slice indices, ascending).
    fn push_slice(&mut self, inside: &[u32], results: &[Voxel]) -> Result<(), Error> {
        let s = self.slice_start.len() - 1;
        for &i in inside {
            let at = s * self.slice_len + i as usize;
            self.mask[at / 64] |= 1 << (at % 64);
        }
        // Encoded a piece at a time: a whole slice's records at once would
        // be another buffer the size of the results.
        let mut bytes = Vec::with_capacity(RECORDS_AT_A_TIME * Voxel::BYTES);
        for piece in results.chunks(RECORDS_AT_A_TIME) {
            bytes.clear();
            for v in piece {
                v.encode_into(&mut bytes);
            }
            (&self.file)
                .write_all(&bytes)
                .map_err(|source| Error::Scratch { source })?;
        }
        let start = self.slice_start[s];
        self.slice_start.push(start + results.len() as u64);
        Ok(())
    }

    /// The values of one column for voxels `first..first + out.len()` (x
    /// fastest, slice after slice) into `out`; voxels outside the mask get
    /// the column's background. The records are read a piece at a time, as
    /// they are written.
    fn values(&self, column: Column, first: usize, out: &mut [f32]) -> Result<(), Error> {
        let slice_start = first / self.slice_len.max(1);
        let mut record = self.slice_start[slice_start.min(self.slice_start.len() - 1)]
            + self.inside_between(slice_start * self.slice_len, first);
        let records_end = self.slice_start[self.slice_start.len() - 1];
        let background = column.of(&Voxel::default());
        let mut bytes = vec![0u8; RECORDS_AT_A_TIME * Voxel::BYTES];
        let mut held = 0..0;
        for (i, o) in (first..).zip(out.iter_mut()) {
            if !self.inside(i) {
                *o = background;
                continue;
            }
            if held.is_empty() {
                let take = records_end
                    .saturating_sub(record)
                    .min(RECORDS_AT_A_TIME as u64) as usize;
                self.file
                    .read_exact_at(
                        &mut bytes[..take * Voxel::BYTES],
                        record * Voxel::BYTES as u64,
                    )
                    .map_err(|source| Error::Scratch { source })?;
                record += take as u64;
                held = 0..take;
            }
            *o = match held.next() {
                Some(r) => column.of(&Voxel::decode(&bytes[r * Voxel::BYTES..])),
                None => background,
            };
        }
        Ok(())
    }

    /// Voxels in the mask among `from..to`.
    fn inside_between(&self, from: usize, to: usize) -> u64 {
        let mut count = 0u64;
        let mut i = from;
        while i < to {
            let (word, bit) = (i / 64, i % 64);
            let end = ((word + 1) * 64).min(to);
            let bits = self.mask[word] >> bit;
            let len = end - i;
            let bits = if len == 64 {
                bits
            } else {
                bits & ((1u64 << len) - 1)
            };
            count += u64::from(bits.count_ones());
            i = end;
        }
        count
    }
}

/// Records of [`Results`]' file encoded or decoded at a time (68 KB).
const RECORDS_AT_A_TIME: usize = 4096;

/// Which fit result an output image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Value,
    Rate,
    Amplitude,
    Valid,
    Residual,
}

impl Column {
    fn of(self, v: &Voxel) -> f32 {
        match self {
            Column::Value => v.value,
            Column::Rate => v.rate,
            Column::Amplitude => v.amplitude,
            Column::Valid => {
                if v.valid {
                    1.0
                } else {
                    0.0
                }
            }
            Column::Residual => v.rms,
        }
    }
}

impl MapSet {
    /// How many output images there are.
    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Output image `k` (0: the map) without its data: name, description,
    /// unit and scale.
    pub fn template(&self, k: usize) -> &Image {
        &self.images[k].0
    }

    /// Slice `s` of output image `k` into `out` (one slice long), read back
    /// from the results.
    pub fn image_slice(&self, k: usize, s: usize, out: &mut [f32]) -> Result<(), Error> {
        self.image_values(k, s * self.grid.slice_len(), out)
    }

    /// Voxels `first..first + out.len()` of output image `k` (x fastest,
    /// slice after slice) into `out`, read back from the results.
    pub fn image_values(&self, k: usize, first: usize, out: &mut [f32]) -> Result<(), Error> {
        self.results.values(self.images[k].1, first, out)
    }
}

/// One fitted voxel's results (a 17-byte record in [`Results`]' file).
#[derive(Debug, Clone, Copy, Default)]
struct Voxel {
    value: f32,
    rate: f32,
    amplitude: f32,
    valid: bool,
    rms: f32,
}

impl Voxel {
    /// A record in the results file.
    const BYTES: usize = 17;

    fn encode_into(&self, out: &mut Vec<u8>) {
        let Voxel {
            value,
            rate,
            amplitude,
            valid,
            rms,
        } = *self;
        // One fixed-size record, appended at once (five appends each
        // checked the capacity).
        let mut record = [0u8; Self::BYTES];
        record[0..4].copy_from_slice(&value.to_le_bytes());
        record[4..8].copy_from_slice(&rate.to_le_bytes());
        record[8..12].copy_from_slice(&amplitude.to_le_bytes());
        record[12] = u8::from(valid);
        record[13..17].copy_from_slice(&rms.to_le_bytes());
        out.extend_from_slice(&record);
    }

    fn decode(b: &[u8]) -> Voxel {
        let f = |at: usize| f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        Voxel {
            value: f(0),
            rate: f(4),
            amplitude: f(8),
            valid: b[12] != 0,
            rms: f(13),
        }
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Voxels a worker takes at a time: small enough that the workers finish a
/// slice together (the last block of a slice is waited for), large enough
/// that taking one is rare.
const BLOCK: usize = 256;

/// Fits `kind` to every voxel of `stack` inside the Otsu mask. The stack is
/// consumed: each slice's images are freed once its voxels are fitted.
pub fn compute(mut stack: Stack, kind: MapKind, options: Options) -> Result<MapSet, Error> {
    let started = std::time::Instant::now();
    let folder = stack.info.folder.clone();
    let n = stack.grid.len();
    let slice_len = stack.grid.slice_len();
    let slices = stack.grid.slices();
    let first_used = usize::from(kind == MapKind::T2 && options.drop_first_echo);
    let times: Vec<f64> = stack.times[first_used..].to_vec();
    let needed = if kind == MapKind::T1Sr && options.t1_offset {
        3
    } else {
        2
    };
    if times.len() < needed {
        return Err(Error::TooFewTimePoints {
            path: folder,
            what: match kind {
                MapKind::T2 => "echo time",
                MapKind::T1Sr => "recovery time",
                MapKind::Adc => "b-value",
            },
            map: kind.quantity(),
            found: times.len(),
            needed,
            values: times
                .iter()
                .map(|t| format!("{t}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    // The brightest time point holds the object best: the first (used)
    // echo, the longest recovery, the lowest b.
    let reference_time = match kind {
        MapKind::T1Sr => stack.times.len() - 1,
        MapKind::T2 => first_used,
        MapKind::Adc => 0,
    };
    // The reference image is visited a slice at a time (its range is known
    // from the stack's check of every plane, so once, for the histogram;
    // the mask is made as the fit reads each slice) rather than copied
    // whole: a copy in f64 would be larger than a three-point input.
    let (lo, hi) = (0..slices)
        .map(|s| stack.ranges[s + slices * reference_time])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (l, h)| {
            (lo.min(l as f64), hi.max(h as f64))
        });
    let uniform = || Error::BadPixels {
        path: folder.clone(),
        reason: "the reference image is uniform, so there is no object to fit".to_owned(),
    };
    let empty = xnatkit_qa::OtsuHistogram::new(lo, hi).ok_or_else(uniform)?;
    // Once: on Linux each call reads the cgroup limits from /proc and /sys.
    let workers = threads();
    // The histogram's pass split over the workers by slices: each counts
    // its own (exact counts, so the threshold does not depend on the
    // split).
    let histogram_of = |slices: std::ops::Range<usize>| {
        let mut histogram = empty.clone();
        let mut plane = vec![0f32; slice_len];
        let mut wide = vec![0f64; slice_len];
        for s in slices {
            stack.plane(reference_time, s).values_into(&mut plane)?;
            for (w, &v) in wide.iter_mut().zip(&plane) {
                *w = v as f64;
            }
            histogram.add(&wide);
        }
        Ok::<_, Error>(histogram)
    };
    let per_worker = slices.div_ceil(workers.max(1)).max(1);
    let parts: Vec<Result<xnatkit_qa::OtsuHistogram, Error>> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (per_worker..slices)
            .step_by(per_worker)
            .map(|from| scope.spawn(move || histogram_of(from..(from + per_worker).min(slices))))
            .collect();
        let mut parts = vec![histogram_of(0..per_worker.min(slices))];
        // A helper's panic is this thread's (as if one thread had read).
        parts.extend(helpers.into_iter().map(|helper| {
            helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        parts
    });
    let mut histogram = empty;
    for part in parts {
        histogram.merge(&part?);
    }
    let threshold = histogram.threshold();
    let thresholded = started.elapsed();
    let t_max = times.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let model = match kind {
        // The offset needs a third echo to be told from the amplitude.
        MapKind::T2 if times.len() >= 3 => fit::CurveModel::DecayWithOffset,
        MapKind::T2 | MapKind::Adc => fit::CurveModel::Decay,
        MapKind::T1Sr if options.t1_offset => fit::CurveModel::RecoveryWithOffset,
        MapKind::T1Sr => fit::CurveModel::Recovery,
    };
    let reader = SliceReader {
        reference_time,
        first_used,
        slice_len,
        threshold,
    };
    let fitter = SliceFitter {
        kind,
        curve_fitter: fit::CurveFitter::new(model, &times),
        times: &times,
        t_max,
        slice_len,
    };
    let mut results_store = Results::new(n, slice_len)?;
    let mut valid_voxels = 0usize;
    // While slice s is fitted, the calling thread reads slice s + 1 and
    // stores the results of slice s − 1, then joins the fit: reading and
    // storing are not left to one core while the others wait.
    let mut current = SliceData::new(reader.used(stack.times.len()), slice_len);
    let mut next = SliceData::new(reader.used(stack.times.len()), slice_len);
    if slices > 0 {
        reader.read(&mut stack, 0, &mut current)?;
    }
    // The last slice fitted (from the second slice on), its results not
    // yet stored. Its buffers and `results` go round with `current` and
    // `next` rather than being made anew each slice: a new buffer a slice
    // left freed memory in the threads' malloc arenas (about 3 MB of a T1
    // run's peak).
    let mut stored = FittedSlice::default();
    let mut results: Vec<Voxel> = Vec::new();
    for s in 0..slices {
        results.clear();
        results.resize(current.inside.len(), Voxel::default());
        let blocks = Mutex::new(results.chunks_mut(BLOCK).zip(current.inside.chunks(BLOCK)));
        let helpers = workers
            .min(current.inside.len().div_ceil(BLOCK))
            .saturating_sub(1);
        let (read, store) = std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|| fitter.fit_blocks(&blocks, &current.signal));
            }
            let read = match s + 1 < slices {
                true => reader.read(&mut stack, s + 1, &mut next),
                false => Ok(()),
            };
            let store = match s > 0 {
                true => results_store.push_slice(&stored.inside, &stored.voxels),
                false => Ok(()),
            };
            fitter.fit_blocks(&blocks, &current.signal);
            (read, store)
        });
        read?;
        store?;
        valid_voxels += results.iter().filter(|v| v.valid).count();
        std::mem::swap(&mut stored.inside, &mut current.inside);
        std::mem::swap(&mut stored.voxels, &mut results);
        std::mem::swap(&mut current, &mut next);
    }
    if slices > 0 {
        results_store.push_slice(&stored.inside, &stored.voxels)?;
    }
    drop(stack.planes);
    let fitted_voxels = results_store.fitted();
    tracing::debug!(
        threshold_s = thresholded.as_secs_f64(),
        voxels_s = (started.elapsed() - thresholded).as_secs_f64(),
        "fit stage: Otsu's threshold, then reading each slice, its voxels above the threshold, and fitting them"
    );
    let q = kind.quantity();
    let (map_unit, rate_name, rate_unit, amplitude_name, map_scale, rate_scale) = match kind {
        MapKind::T2 => ("ms", Some("R2"), "1/s", "M0", 0.1, 0.01),
        MapKind::T1Sr => ("ms", Some("R1"), "1/s", "A", 0.1, 0.001),
        MapKind::Adc => ("mm2/s", None, "", "S0", 1e-6, 1.0),
    };
    let template = |name: String, description: String, unit: &str, scale: Scale| Image {
        name,
        description,
        unit: unit.to_owned(),
        scale,
        data: Vec::new(),
    };
    let mut images = vec![(
        template(
            format!("{q}_map"),
            format!("{q} map"),
            map_unit,
            Scale::Fixed(map_scale),
        ),
        Column::Value,
    )];
    if let Some(rate) = rate_name {
        images.push((
            template(
                format!("{rate}_map"),
                format!("{rate} map (1000/{q})"),
                rate_unit,
                Scale::Fixed(rate_scale),
            ),
            Column::Rate,
        ));
    }
    images.push((
        template(
            format!("{q}_{amplitude_name}"),
            format!("{q} fit amplitude {amplitude_name}"),
            "",
            Scale::FromMaximum,
        ),
        Column::Amplitude,
    ));
    images.push((
        template(
            format!("{q}_valid"),
            format!("{q} fit valid (1) in the Otsu mask"),
            "",
            Scale::Fixed(1.0),
        ),
        Column::Valid,
    ));
    images.push((
        template(
            format!("{q}_residual"),
            format!("{q} fit RMS residual"),
            "",
            Scale::FromMaximum,
        ),
        Column::Residual,
    ));
    Ok(MapSet {
        kind,
        info: stack.info,
        grid: stack.grid,
        model: kind.model(model.has_offset()).to_owned(),
        timing: stack.timing,
        times,
        otsu_threshold: threshold,
        fitted_voxels,
        valid_voxels,
        images,
        results: results_store,
    })
}

/// One slice's signal (the used time points, one after another) and the
/// in-slice indices of its voxels above the threshold, ascending (a slice
/// has at most 65 535² < 2³² voxels).
struct SliceData {
    signal: Vec<f32>,
    inside: Vec<u32>,
}

/// A fitted slice's voxels (in-slice indices) and results, waiting to be
/// stored.
#[derive(Default)]
struct FittedSlice {
    inside: Vec<u32>,
    voxels: Vec<Voxel>,
}

impl SliceData {
    fn new(used: usize, slice_len: usize) -> SliceData {
        SliceData {
            signal: vec![0f32; used * slice_len],
            inside: Vec::new(),
        }
    }
}

/// Reads a slice for the fit.
struct SliceReader {
    reference_time: usize,
    first_used: usize,
    slice_len: usize,
    threshold: f64,
}

impl SliceReader {
    fn used(&self, times: usize) -> usize {
        times - self.first_used
    }

    /// Slice `s` into `into`: the reference image first, whose voxels
    /// above the threshold are the ones fitted, then (if there are any) the
    /// other used time points. The slice's images are released after.
    fn read(&self, stack: &mut Stack, s: usize, into: &mut SliceData) -> Result<(), Error> {
        let slice_len = self.slice_len;
        let reference =
            &mut into.signal[(self.reference_time - self.first_used) * slice_len..][..slice_len];
        stack.plane(self.reference_time, s).values_into(reference)?;
        into.inside.clear();
        into.inside.extend(
            (0..slice_len)
                .filter(|&i| reference[i] as f64 > self.threshold)
                .map(|i| i as u32),
        );
        if !into.inside.is_empty() {
            let nt = stack.times.len();
            for (t, plane) in (self.first_used..nt).zip(into.signal.chunks_mut(slice_len.max(1))) {
                if t != self.reference_time {
                    stack.plane(t, s).values_into(plane)?;
                }
            }
        }
        stack.release_slice(s);
        Ok(())
    }
}

/// Fits blocks of a slice's voxels.
struct SliceFitter<'a> {
    kind: MapKind,
    curve_fitter: fit::CurveFitter,
    times: &'a [f64],
    t_max: f64,
    slice_len: usize,
}

/// A slice's voxels, [`BLOCK`] at a time: where their results go and their
/// in-slice indices.
type Blocks<'r, 'i> =
    Mutex<std::iter::Zip<std::slice::ChunksMut<'r, Voxel>, std::slice::Chunks<'i, u32>>>;

impl SliceFitter<'_> {
    /// Takes blocks until none is left.
    fn fit_blocks(&self, blocks: &Blocks<'_, '_>, signal: &[f32]) {
        let used = self.times.len();
        let mut curves = vec![0f64; used * BLOCK];
        let mut fits = vec![None; BLOCK];
        loop {
            let next = match blocks.lock() {
                Ok(mut it) => it.next(),
                Err(poisoned) => poisoned.into_inner().next(),
            };
            let Some((out, at)) = next else { break };
            let curves = &mut curves[..used * at.len()];
            for (y, &i) in curves.chunks_exact_mut(used).zip(at) {
                for (k, slot) in y.iter_mut().enumerate() {
                    *slot = signal[k * self.slice_len + i as usize] as f64;
                }
            }
            let fits = &mut fits[..at.len()];
            self.curve_fitter.fit(curves, fits);
            for (voxel, fit) in out.iter_mut().zip(fits.iter()) {
                *voxel = voxel_of(self.kind, *fit, self.t_max);
            }
        }
    }
}

/// The voxel's values from its fit (`None`: no fit, all zero).
fn voxel_of(kind: MapKind, fit: Option<fit::Fitted<3>>, t_max: f64) -> Voxel {
    let Some(fit) = fit else {
        return Voxel::default();
    };
    let (amplitude, rate, rms, converged) = (fit.params[0], fit.params[1], fit.rms, fit.converged);
    let finite = amplitude.is_finite() && rate.is_finite() && rms.is_finite();
    match kind {
        MapKind::Adc => {
            // Identical images (no decay) fit rate 0 to rounding.
            let adc = if rate.abs() < 1e-12 { 0.0 } else { rate };
            let valid = finite && converged && amplitude > 0.0 && (0.0..=0.01).contains(&adc);
            Voxel {
                value: if valid { adc as f32 } else { 0.0 },
                rate: 0.0,
                amplitude: if finite { amplitude as f32 } else { 0.0 },
                valid,
                rms: if finite { rms as f32 } else { 0.0 },
            }
        }
        _ => {
            let time = 1.0 / rate;
            // Relaxation times beyond ten times the longest sampled time are
            // not determined by the data (XNAT-PIC flags T2 > 1000 ms).
            let valid =
                finite && converged && amplitude > 0.0 && rate > 0.0 && time <= 10.0 * t_max;
            Voxel {
                value: if valid { time as f32 } else { 0.0 },
                rate: if valid { (1000.0 / time) as f32 } else { 0.0 },
                amplitude: if finite { amplitude as f32 } else { 0.0 },
                valid,
                rms: if finite { rms as f32 } else { 0.0 },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voxel whose values name it: voxel `i` of the volume.
    fn voxel(i: usize) -> Voxel {
        Voxel {
            value: i as f32,
            rate: -(i as f32),
            amplitude: 0.5 * i as f32,
            valid: i.is_multiple_of(3),
            rms: 1.0 / (i as f32 + 1.0),
        }
    }

    /// Any run of voxels read back, across slices and across the pieces
    /// the records are read in, is what was stored: fitted voxels their
    /// results, the others the background.
    #[test]
    fn values_read_back_match_what_was_stored_for_any_run_of_voxels() {
        let (slice_len, slices) = (5003, 3);
        let mut results = Results::new(slice_len * slices, slice_len).unwrap();
        // Irregular masks (records cross RECORDS_AT_A_TIME within a slice);
        // the last slice has no fitted voxel.
        let inside_of = |s: usize, i: usize| s < 2 && !(i * 7 + s).is_multiple_of(11);
        for s in 0..slices {
            let inside: Vec<u32> = (0..slice_len)
                .filter(|&i| inside_of(s, i))
                .map(|i| i as u32)
                .collect();
            let voxels: Vec<Voxel> = inside
                .iter()
                .map(|&i| voxel(s * slice_len + i as usize))
                .collect();
            results.push_slice(&inside, &voxels).unwrap();
        }
        assert!(results.fitted() > 2 * RECORDS_AT_A_TIME);
        let expected = |column: Column, at: usize| {
            let (s, i) = (at / slice_len, at % slice_len);
            match inside_of(s, i) {
                true => column.of(&voxel(at)),
                false => column.of(&Voxel::default()),
            }
        };
        let runs = [
            (0, slice_len * slices),
            (0, 1),
            (17, 4500),
            (slice_len - 3, 10),
            (slice_len + 4000, slice_len + 100),
            (2 * slice_len - 1, slice_len + 1),
            (slice_len * slices - 1, 1),
        ];
        for column in [
            Column::Value,
            Column::Rate,
            Column::Amplitude,
            Column::Valid,
            Column::Residual,
        ] {
            for (first, len) in runs {
                let mut out = vec![f32::NAN; len];
                results.values(column, first, &mut out).unwrap();
                for (k, &got) in out.iter().enumerate() {
                    assert_eq!(
                        got.to_bits(),
                        expected(column, first + k).to_bits(),
                        "{column:?} voxel {} of the run from {first}",
                        first + k
                    );
                }
            }
        }
    }
}
