//! # xnatkit-maps
//!
//! XNAT-PIC's processing pipelines as a library, without a server: the
//! parametric maps and the ROI statistics preclinical users run after upload.
//!
//! - [`run_map`]: a T2 map (multi-echo), a T1 map (saturation recovery) or an
//!   ADC map (diffusion) from a DICOM series folder (classic or enhanced
//!   multi-frame, any vendor) or a ParaVision scan folder; every slice, every
//!   voxel inside an Otsu mask; NIfTI with the DICOM geometry's affine, a
//!   DICOM series in the same study, PNG previews, and `maps.json` saying
//!   which model and which time base were used. T1's time base
//!   ([`TimeBase`], [`timebase`]) is the recovery time TR − echo spacing ×
//!   (echoes per excitation − ½) — by default for a ParaVision scan folder,
//!   from its method file, as RAREVTR defines it — or the repetition time
//!   (the default for DICOM, whose headers hold no echo spacing);
//! - [`run_mask_average`]: an RTSTRUCT's ROIs rasterised onto a map's own
//!   grid in patient coordinates, per-ROI statistics as `rois.json`,
//!   `rois.csv` and XNAT-PIC's `statistics.txt`, the masked map and masks.
//!
//! Modules: [`input`] (DICOM → frames), [`stack`] (frames → slices × time
//! points), [`timebase`] (which time the time points are), [`fit`] (the
//! curve fits), [`maps`] (fits over the volume),
//! [`rtstruct`] (ROIs → masks), [`roistats`], and the writers
//! ([`nifti_io`], [`dicom_out`], [`preview`], [`output`]). docs/maps.md
//! has the models, the rasterisation rule and the measured accuracy.

pub mod dicom_out;
mod error;
pub mod fit;
pub mod geometry;
pub mod input;
pub mod maps;
pub mod nifti_io;
pub mod output;
pub mod preview;
pub mod roistats;
pub mod rtstruct;
pub mod stack;
pub mod timebase;
mod uid;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

pub use error::Error;
pub use maps::{MapKind, MapSet, Options};
pub use roistats::{MapQuantity, RoiStats};
pub use timebase::{TimeBase, Timing};

/// What a map run did (also written as `maps.json`).
#[derive(Debug, Clone, Serialize)]
pub struct MapReport {
    pub map: MapKind,
    pub input: PathBuf,
    pub out_dir: PathBuf,
    pub model: String,
    /// `time_base` (`repetition` or `recovery` for T1), `time_source`,
    /// and for the recovery base `repetition_times` and `echo_train`.
    #[serde(flatten)]
    pub timing: Timing,
    /// The time points fitted, in the time base's unit (ms, or s/mm²).
    pub times: Vec<f64>,
    pub dropped_first_echo: bool,
    /// `[columns, rows, slices]`.
    pub dims: [usize; 3],
    pub voxel_mm: [f64; 3],
    pub background: String,
    pub otsu_threshold: f64,
    pub fitted_voxels: usize,
    pub valid_voxels: usize,
    pub files: Vec<PathBuf>,
}

/// Output name of the map (`T2_map.nii.gz`, …) for a kind.
pub fn map_file_name(kind: MapKind) -> String {
    format!("{}_map.nii.gz", kind.quantity())
}

/// Writes every output image of `maps` to `staged`, each read back from
/// the fit results a slice (or a compression piece) at a time: its NIfTI,
/// and for the map and its rate the DICOM series and the PNG preview.
pub fn write_map_outputs(maps: &MapSet, staged: &mut output::Staged) -> Result<(), Error> {
    let grid = &maps.grid;
    let dims = [grid.cols, grid.rows, grid.slices()];
    let derivation = format!(
        "xnatkit maps: {} fitted by least squares (variable projection, Levenberg-Marquardt where that does not settle) from a log-linear start; {}",
        maps.model,
        maps.timing.describe()
    );
    for index in 0..maps.image_count() {
        let image = maps.template(index);
        let slice = |s: usize, out: &mut [f32]| maps.image_slice(index, s, out);
        let voxels = |first: usize, piece: &mut [f32]| -> std::io::Result<()> {
            maps.image_values(index, first, piece)
                .map_err(std::io::Error::other)
        };
        let description = format!("{} {}", image.description, image.unit);
        staged.write_with(format!("{}.nii.gz", image.name), |w| {
            nifti_io::write_from(w, grid, &voxels, description.trim(), false)
        })?;
        // The map and its rate are what people look at and what viewers
        // open: DICOM series and previews for those two.
        let headline = index == 0 || image.name.starts_with('R');
        if headline {
            dicom_out::encode_series(
                &maps.info,
                grid,
                image,
                &slice,
                index,
                &derivation,
                &format!("{}_dicom", image.name),
                |name, bytes| staged.add(name, &bytes),
            )?;
            let picture = preview::draw_slices(dims, &slice, &image.unit, None)?;
            staged.write_with(format!("{}.png", image.name), |w| picture.write_png(w))?;
        }
    }
    Ok(())
}

/// Fits `kind` to the series at `input` and writes the outputs to `out_dir`.
/// Stage times are logged at debug level (`XNATKIT_LOG=xnatkit_maps=debug`).
pub fn run_map(
    input: &Path,
    kind: MapKind,
    options: Options,
    out_dir: &Path,
) -> Result<MapReport, Error> {
    let started = Instant::now();
    let mut stack = stack::load(input, kind.axis())?;
    timebase::resolve(&mut stack, kind, &options)?;
    let read = started.elapsed();
    let maps = maps::compute(stack, kind, options)?;
    let fit = started.elapsed() - read;
    let mut staged = output::Staged::new(out_dir);
    write_map_outputs(&maps, &mut staged)?;
    let names: Vec<String> = staged.names().map(str::to_owned).collect();
    let grid = &maps.grid;
    let mut report = MapReport {
        map: kind,
        input: input.to_owned(),
        out_dir: out_dir.to_owned(),
        model: maps.model.clone(),
        timing: maps.timing.clone(),
        times: maps.times.clone(),
        dropped_first_echo: kind == MapKind::T2 && options.drop_first_echo,
        dims: [grid.cols, grid.rows, grid.slices()],
        voxel_mm: [grid.spacing[1], grid.spacing[0], grid.slice_spacing()],
        background: "excluded: voxels at or below Otsu's threshold of the brightest time point (first used echo, longest recovery, lowest b) are not fitted".to_owned(),
        otsu_threshold: maps.otsu_threshold,
        fitted_voxels: maps.fitted_voxels,
        valid_voxels: maps.valid_voxels,
        files: names.iter().map(|n| out_dir.join(n)).collect(),
    };
    report.files.push(out_dir.join("maps.json"));
    // Relative paths in the file itself, so reruns elsewhere give the same bytes.
    let mut stored = report.clone();
    stored.input = PathBuf::from(input.file_name().unwrap_or_default());
    stored.out_dir = PathBuf::from(".");
    stored.files = names.iter().map(PathBuf::from).collect();
    let mut json = serde_json::to_vec_pretty(&stored).unwrap_or_default();
    json.push(b'\n');
    staged.add("maps.json", &json)?;
    let encoded = started.elapsed() - read - fit;
    staged.commit()?;
    let committed = started.elapsed() - read - fit - encoded;
    tracing::debug!(
        map = kind.quantity(),
        read_s = read.as_secs_f64(),
        fit_s = fit.as_secs_f64(),
        write_s = encoded.as_secs_f64(),
        commit_s = committed.as_secs_f64(),
        fitted_voxels = maps.fitted_voxels,
        "map stage times: read and group the series, fit, encode and write the outputs to temporary names, fsync and rename them"
    );
    Ok(report)
}

/// What a mask-average run did.
#[derive(Debug, Clone, Serialize)]
pub struct MaskReport {
    pub map: PathBuf,
    pub rtstruct: PathBuf,
    pub out_dir: PathBuf,
    pub quantity: String,
    pub unit: String,
    /// "references" (the RTSTRUCT's image references resolve to the map's
    /// images) or "geometry" (frame of reference and slice position).
    pub matched_by: String,
    pub rois: Vec<RoiStats>,
    pub warnings: Vec<String>,
    pub files: Vec<PathBuf>,
}

/// A map to measure in: a NIfTI file or a DICOM series folder.
pub fn load_map(path: &Path) -> Result<stack::MapImage, Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if path.is_file() && (name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        let (grid, data) = nifti_io::read_map(path)?;
        let slices = grid.slices();
        return Ok(stack::MapImage {
            name,
            grid,
            data,
            slice_sops: vec![Vec::new(); slices],
        });
    }
    let mut map = stack::single_image(input::read_series(path)?)?;
    if map.name.is_empty() {
        map.name = name;
    }
    Ok(map)
}

/// Rasterises the ROIs of `rois` (an RTSTRUCT file) on the map at `map` (a
/// DICOM series folder or a NIfTI file) and writes the statistics.
pub fn run_mask_average(map: &Path, rois: &Path, out_dir: &Path) -> Result<MaskReport, Error> {
    let stack::MapImage {
        name,
        grid,
        data,
        slice_sops: sops,
    } = load_map(map)?;
    let rt = rtstruct::read(rois)?;
    let raster = rtstruct::rasterise(&rt, &grid, &sops)?;
    let quantity = MapQuantity::guess(&name);
    let stats = roistats::compute(&grid, &data, &raster.masks, &quantity);
    let mut outputs = output::Outputs::default();
    outputs.add("rois.json", roistats::to_json(&stats));
    outputs.add("rois.csv", roistats::to_csv(&stats));
    outputs.add(
        "statistics.txt",
        roistats::to_statistics_txt(&stats, &quantity),
    );
    let mut labels = vec![0u16; grid.len()];
    for (k, m) in raster.masks.iter().enumerate() {
        for (l, &inside) in labels.iter_mut().zip(&m.inside) {
            if inside && *l == 0 {
                *l = (k + 1) as u16;
            }
        }
        let mask: Vec<f32> = m
            .inside
            .iter()
            .map(|&v| if v { 1.0 } else { 0.0 })
            .collect();
        outputs.add(
            format!("mask_{}.nii.gz", roistats::file_safe(&m.name)),
            nifti_io::encode(&grid, &mask, &format!("ROI {}", m.name), false),
        );
    }
    let label_image: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
    outputs.add(
        "mask.nii.gz",
        nifti_io::encode(
            &grid,
            &label_image,
            "ROI labels (order of rois.json)",
            false,
        ),
    );
    let masked: Vec<f32> = data
        .iter()
        .zip(&labels)
        .map(|(&v, &l)| if l != 0 { v } else { 0.0 })
        .collect();
    let stem = quantity_stem(&name, &quantity);
    outputs.add(
        format!("{stem}_masked.nii.gz"),
        nifti_io::encode(&grid, &masked, &format!("{stem} inside the ROIs"), false),
    );
    let png = preview::render(
        &data,
        [grid.cols, grid.rows, grid.slices()],
        &quantity.unit,
        Some(&labels),
    )?;
    outputs.add(format!("{stem}_rois.png"), png);
    let files = outputs.commit(out_dir)?;
    Ok(MaskReport {
        map: map.to_owned(),
        rtstruct: rois.to_owned(),
        out_dir: out_dir.to_owned(),
        quantity: quantity.name.clone(),
        unit: quantity.unit.clone(),
        matched_by: raster.matched_by,
        rois: stats,
        warnings: raster.warnings,
        files,
    })
}

fn quantity_stem(name: &str, quantity: &MapQuantity) -> String {
    if quantity.name == "value" {
        let stem = name.trim_end_matches(".gz").trim_end_matches(".nii");
        roistats::file_safe(stem)
    } else {
        format!("{}_map", quantity.name)
    }
}
