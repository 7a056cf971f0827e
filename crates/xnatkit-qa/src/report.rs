//! [`assess`] computes every metric of one image; [`write_outputs`] stores
//! them as `qa.json`, `qa.csv` and `montage.png` — each written under a
//! temporary name and renamed, so a crash never leaves a half report.

use std::path::Path;

use serde::Serialize;
use xnatkit_fileio::AtomicFile;

use crate::metrics::{self, Summary};
use crate::{Error, Mask, Volume, head_mask};

/// The numbers of one image. Intensity statistics are of the mean image
/// inside the head mask; `None` where a metric is undefined (see
/// [`metrics`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QaReport {
    pub dims: [usize; 4],
    pub voxel_mm: [f32; 3],
    pub otsu_threshold: f64,
    pub mask_voxels: usize,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
    pub snr: Option<f64>,
    pub efc: Option<f64>,
    pub fber: Option<f64>,
    /// 4-D series only.
    pub tsnr_mean: Option<f64>,
    pub tsnr_median: Option<f64>,
    pub drift_percent: Option<f64>,
}

impl QaReport {
    /// `(name, value)` rows, the order of the CSV and of XNAT's
    /// `additionalStatistics`.
    pub fn rows(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("mask_voxels", Some(self.mask_voxels as f64)),
            ("otsu_threshold", Some(self.otsu_threshold)),
            ("mean", Some(self.mean)),
            ("stddev", Some(self.stddev)),
            ("min", Some(self.min)),
            ("max", Some(self.max)),
            ("snr", self.snr),
            ("efc", self.efc),
            ("fber", self.fber),
            ("tsnr_mean", self.tsnr_mean),
            ("tsnr_median", self.tsnr_median),
            ("drift_percent", self.drift_percent),
        ]
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::from("metric,value\n");
        for (name, value) in self.rows() {
            let value = value.map(|v| format!("{v}")).unwrap_or_default();
            out.push_str(&format!("{name},{value}\n"));
        }
        out
    }
}

/// The metrics of a `qa.csv` (as [`QaReport::to_csv`] writes it), each
/// name with `prefix` before it, in the file's order; an empty value (a
/// metric that does not apply, such as tSNR of a 3-D image) is left out.
/// What the server's engine and the local runner put into an
/// `xnat:qcAssessmentData`.
pub fn csv_metrics(prefix: &str, text: &str) -> Vec<(String, f64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(',')?;
            let value = value.trim().parse::<f64>().ok()?;
            value
                .is_finite()
                .then(|| (format!("{prefix}{name}"), value))
        })
        .collect()
}

/// Every metric of `volume`, with the mask they were computed in.
pub fn assess(volume: &Volume) -> Result<(QaReport, Mask, Vec<f64>), Error> {
    let [nx, ny, nz, frames] = volume.dims;
    let mean_image = volume.mean_image();
    let (mask, threshold) = head_mask(&mean_image, [nx, ny, nz]).ok_or(Error::EmptyMask)?;
    let inside = |i: &usize| mask.inside[*i];
    let head: Summary =
        metrics::summary((0..mean_image.len()).filter(inside).map(|i| mean_image[i]))
            .ok_or(Error::EmptyMask)?;
    let (tsnr_mean, tsnr_median, drift_percent) = if frames > 1 {
        let map = metrics::tsnr_map(&volume.data, volume.frame_len(), frames);
        let in_mask: Vec<f64> = (0..map.len()).filter(inside).map(|i| map[i]).collect();
        let global: Vec<f64> = (0..frames)
            .map(|t| {
                let frame = volume.frame(t);
                (0..frame.len())
                    .filter(inside)
                    .map(|i| frame[i])
                    .sum::<f64>()
                    / head.n as f64
            })
            .collect();
        (
            metrics::summary(in_mask.iter().copied()).map(|s| s.mean),
            metrics::median(in_mask),
            metrics::drift_percent(&global),
        )
    } else {
        (None, None, None)
    };
    let report = QaReport {
        dims: volume.dims,
        voxel_mm: volume.voxel_mm,
        otsu_threshold: threshold,
        mask_voxels: head.n,
        mean: head.mean,
        stddev: head.stddev,
        min: head.min,
        max: head.max,
        snr: metrics::snr(&head),
        efc: metrics::efc(&mean_image),
        fber: metrics::fber(&mean_image, &mask.inside),
        tsnr_mean,
        tsnr_median,
        drift_percent,
    };
    Ok((report, mask, mean_image))
}

/// Writes `qa.json`, `qa.csv` and `montage.png` into `dir`.
pub fn write_outputs(dir: &Path, report: &QaReport, montage: &[u8]) -> Result<(), Error> {
    // Plain numbers and options: serialising cannot fail (NaN becomes null).
    let json = serde_json::to_vec_pretty(report).unwrap_or_default();
    write_file(&dir.join("qa.json"), &json)?;
    write_file(&dir.join("qa.csv"), report.to_csv().as_bytes())?;
    write_file(&dir.join("montage.png"), montage)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let wrap = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = AtomicFile::create(path, None).map_err(wrap)?;
    file.write_all(bytes).map_err(wrap)?;
    file.commit().map_err(wrap)?;
    Ok(())
}
