//! The three parametric maps, every voxel of every slice: slice after slice
//! (each slice's images are released once fitted, so memory does not grow
//! with the results), the voxels of a slice in parallel (std::thread::scope,
//! workers taking blocks of voxels in turn; the workspace has no rayon).
//! Results are kept for the fitted voxels only; output images are made
//! from them one at a time ([`MapSet::image`]). The background is excluded by
//! Otsu's threshold on the brightest time point, as XNAT-PIC does (their
//! mask is per slice on a 16–32-bin histogram; ours is one threshold over
//! the whole volume from xnatkit-qa's 256-bin Otsu).

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
#[derive(Debug, Clone)]
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
    /// Voxels inside the Otsu mask (the fitted ones), x fastest.
    mask: Vec<bool>,
    /// Results of the fitted voxels, in voxel order.
    voxels: Vec<Voxel>,
}

/// Which fit result an output image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Value,
    Rate,
    Amplitude,
    Valid,
    Residual,
}

impl MapSet {
    /// How many output images there are.
    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Output image `k` (0: the map), its data made now from the results.
    pub fn image(&self, k: usize) -> Image {
        let (template, column) = &self.images[k];
        let value = |v: &Voxel| match column {
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
        };
        let background = value(&Voxel::default());
        let mut fitted = self.voxels.iter();
        let data = self
            .mask
            .iter()
            .map(|&inside| match inside.then(|| fitted.next()).flatten() {
                Some(v) => value(v),
                None => background,
            })
            .collect();
        Image {
            data,
            ..template.clone()
        }
    }
}

// Packed: 17 bytes instead of 20 with padding, for every fitted voxel
// (0.7 M of them in a 256 × 256 × 20 series), and the fields are only ever
// read and written by value.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, packed)]
struct Voxel {
    value: f32,
    rate: f32,
    amplitude: f32,
    valid: bool,
    rms: f32,
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
    let (threshold, mask) = {
        let mut reference: Vec<f64> = Vec::with_capacity(n);
        let mut plane = vec![0f32; slice_len];
        for s in 0..slices {
            stack.plane(reference_time, s).values_into(&mut plane);
            reference.extend(plane.iter().map(|&v| v as f64));
        }
        let threshold = xnatkit_qa::otsu_threshold(&reference).ok_or_else(|| Error::BadPixels {
            path: folder.clone(),
            reason: "the reference image is uniform, so there is no object to fit".to_owned(),
        })?;
        let mask: Vec<bool> = reference.iter().map(|&v| v > threshold).collect();
        (threshold, mask)
    };
    let t_max = times.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let offset_t2 = times.len() >= 3;
    let nt = stack.times.len();
    let used = nt - first_used;
    let fitted_voxels = mask.iter().filter(|&&m| m).count();
    let mut voxels: Vec<Voxel> = Vec::with_capacity(fitted_voxels);
    // The used time points of one slice, time point after time point.
    let mut signal = vec![0f32; used * slice_len];
    // Once: on Linux each call reads the cgroup limits from /proc and /sys.
    let workers = threads();
    for s in 0..slices {
        let inside: Vec<usize> = (0..slice_len)
            .filter(|&i| mask[s * slice_len + i])
            .collect();
        if !inside.is_empty() {
            for (t, plane) in (first_used..nt).zip(signal.chunks_mut(slice_len.max(1))) {
                stack.plane(t, s).values_into(plane);
            }
        }
        stack.release_slice(s);
        if inside.is_empty() {
            continue;
        }
        let mut results = vec![Voxel::default(); inside.len()];
        let blocks = Mutex::new(results.chunks_mut(BLOCK).zip(inside.chunks(BLOCK)));
        let signal = &signal;
        let times = &times;
        std::thread::scope(|scope| {
            for _ in 0..workers.min(inside.len().div_ceil(BLOCK)) {
                let blocks = &blocks;
                scope.spawn(move || {
                    let mut y = vec![0f64; used];
                    loop {
                        let next = match blocks.lock() {
                            Ok(mut it) => it.next(),
                            Err(poisoned) => poisoned.into_inner().next(),
                        };
                        let Some((out, at)) = next else { break };
                        for (voxel, &i) in out.iter_mut().zip(at) {
                            for (k, slot) in y.iter_mut().enumerate() {
                                *slot = signal[k * slice_len + i] as f64;
                            }
                            *voxel = fit_voxel(kind, options, offset_t2, times, &y, t_max);
                        }
                    }
                });
            }
        });
        voxels.extend_from_slice(&results);
    }
    drop(stack.planes);
    let valid_voxels = voxels.iter().filter(|v| v.valid).count();
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
    let offset = match kind {
        MapKind::T2 => offset_t2,
        MapKind::T1Sr => options.t1_offset,
        MapKind::Adc => false,
    };
    Ok(MapSet {
        kind,
        info: stack.info,
        grid: stack.grid,
        model: kind.model(offset).to_owned(),
        timing: stack.timing,
        times,
        otsu_threshold: threshold,
        fitted_voxels,
        valid_voxels,
        images,
        mask,
        voxels,
    })
}

fn fit_voxel(
    kind: MapKind,
    options: Options,
    offset_t2: bool,
    t: &[f64],
    y: &[f64],
    t_max: f64,
) -> Voxel {
    let (amplitude, rate, rms, converged) = match kind {
        MapKind::T2 if offset_t2 => match fit::decay_with_offset(t, y) {
            Some(f) => (f.params[0], f.params[1], f.rms, f.converged),
            None => return Voxel::default(),
        },
        MapKind::T2 | MapKind::Adc => match fit::decay(t, y) {
            Some(f) => (f.params[0], f.params[1], f.rms, f.converged),
            None => return Voxel::default(),
        },
        MapKind::T1Sr if options.t1_offset => match fit::recovery_with_offset(t, y) {
            Some(f) => (f.params[0], f.params[1], f.rms, f.converged),
            None => return Voxel::default(),
        },
        MapKind::T1Sr => match fit::recovery(t, y) {
            Some(f) => (f.params[0], f.params[1], f.rms, f.converged),
            None => return Voxel::default(),
        },
    };
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
