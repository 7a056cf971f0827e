//! Statistics of a map inside each ROI, and their three written forms:
//! `rois.json`, `rois.csv` and XNAT-PIC's `statistics.txt` layout.
//!
//! Values counted: finite map values inside the ROI; for relaxation and
//! diffusion maps also > 0, since 0 marks "no valid fit" (XNAT-PIC keeps
//! only values > 0 as well). SD uses ddof = 1 (the sample SD; XNAT-PIC's
//! numpy `std` uses ddof = 0). Rates (R2 = 1000/T2, R1 = 1000/T1, 1/s) are
//! per-voxel reciprocals, then the same statistics.

use serde::Serialize;

use crate::geometry::Grid;
use crate::rtstruct::RoiMask;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub sd: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoiStats {
    pub roi: String,
    pub number: i64,
    /// Voxels inside the ROI on the map grid.
    pub voxels: usize,
    /// Of those, voxels with a usable value (the statistics' n).
    pub values: usize,
    /// In-plane area of the ROI voxels summed over slices, mm².
    pub area_mm2: f64,
    /// voxels × pixel area × slice spacing, mm³.
    pub volume_mm3: f64,
    pub unit: String,
    /// `None` when no voxel has a usable value.
    #[serde(flatten)]
    pub stats: Option<Summary>,
    pub sd_ddof: u8,
    /// `R2`/`R1` statistics for relaxation maps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateStats {
    pub name: String,
    pub unit: String,
    #[serde(flatten)]
    pub stats: Option<Summary>,
}

/// What the map holds, from its name: decides the positive-only rule and
/// the rate.
#[derive(Debug, Clone, PartialEq)]
pub struct MapQuantity {
    /// `T2`, `T1`, `ADC`, `R2`, … or `value` when unknown.
    pub name: String,
    pub unit: String,
    pub positive_only: bool,
    /// `(R2, 1/s)` for T2 in ms, etc.
    pub rate: Option<(String, String)>,
}

impl MapQuantity {
    /// From a file or series name such as `T2_map.nii.gz` or "T2 map [ms]".
    pub fn guess(name: &str) -> Self {
        let upper = name.to_ascii_uppercase();
        let starts = |p: &str| upper.starts_with(p);
        let (name, unit, rate) = if starts("T2") {
            ("T2", "ms", Some(("R2", "1/s")))
        } else if starts("T1") {
            ("T1", "ms", Some(("R1", "1/s")))
        } else if starts("ADC") {
            ("ADC", "mm2/s", None)
        } else if starts("R2") {
            ("R2", "1/s", None)
        } else if starts("R1") {
            ("R1", "1/s", None)
        } else {
            return Self {
                name: "value".to_owned(),
                unit: String::new(),
                positive_only: false,
                rate: None,
            };
        };
        Self {
            name: name.to_owned(),
            unit: unit.to_owned(),
            positive_only: true,
            rate: rate.map(|(a, b)| (a.to_owned(), b.to_owned())),
        }
    }
}

fn summary(mut values: Vec<f64>) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some(Summary {
        mean,
        sd,
        median,
        min: values[0],
        max: values[n - 1],
    })
}

pub fn compute(
    grid: &Grid,
    map: &[f32],
    masks: &[RoiMask],
    quantity: &MapQuantity,
) -> Vec<RoiStats> {
    let pixel_area = grid.spacing[0] * grid.spacing[1];
    let voxel_volume = pixel_area * grid.slice_spacing();
    masks
        .iter()
        .map(|m| {
            let voxels = m.inside.iter().filter(|&&v| v).count();
            let values: Vec<f64> = m
                .inside
                .iter()
                .zip(map)
                .filter(|(inside, v)| {
                    **inside && v.is_finite() && (!quantity.positive_only || **v > 0.0)
                })
                .map(|(_, v)| *v as f64)
                .collect();
            let rate = quantity.rate.as_ref().map(|(name, unit)| RateStats {
                name: name.clone(),
                unit: unit.clone(),
                stats: summary(values.iter().map(|v| 1000.0 / v).collect()),
            });
            RoiStats {
                roi: m.name.clone(),
                number: m.number,
                voxels,
                values: values.len(),
                area_mm2: voxels as f64 * pixel_area,
                volume_mm3: voxels as f64 * voxel_volume,
                unit: quantity.unit.clone(),
                stats: summary(values),
                sd_ddof: 1,
                rate,
            }
        })
        .collect()
}

pub fn to_json(stats: &[RoiStats]) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(stats).unwrap_or_default();
    out.push(b'\n');
    out
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

pub fn to_csv(stats: &[RoiStats]) -> Vec<u8> {
    let mut out = String::from(
        "roi,number,voxels,values,area_mm2,volume_mm3,unit,mean,sd,median,min,max,sd_ddof,rate,rate_unit,rate_mean,rate_sd,rate_median,rate_min,rate_max\n",
    );
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    for r in stats {
        let s = r.stats.as_ref();
        let rate = r.rate.as_ref();
        let rs = rate.and_then(|x| x.stats.as_ref());
        let fields = [
            quote(&r.roi),
            r.number.to_string(),
            r.voxels.to_string(),
            r.values.to_string(),
            format!("{}", r.area_mm2),
            format!("{}", r.volume_mm3),
            quote(&r.unit),
            num(s.map(|x| x.mean)),
            num(s.map(|x| x.sd)),
            num(s.map(|x| x.median)),
            num(s.map(|x| x.min)),
            num(s.map(|x| x.max)),
            r.sd_ddof.to_string(),
            rate.map(|x| x.name.clone()).unwrap_or_default(),
            rate.map(|x| quote(&x.unit)).unwrap_or_default(),
            num(rs.map(|x| x.mean)),
            num(rs.map(|x| x.sd)),
            num(rs.map(|x| x.median)),
            num(rs.map(|x| x.min)),
            num(rs.map(|x| x.max)),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

const RULE: &str = "*****************************************************************************";
const DASHES: &str =
    "-----------------------------------------------------------------------------";

/// XNAT-PIC's `statistics.txt` layout, with the map's own quantity in the
/// labels (theirs always says T2/R2) and sample SD (ddof 1).
pub fn to_statistics_txt(stats: &[RoiStats], quantity: &MapQuantity) -> Vec<u8> {
    let mut out = format!(
        "{RULE}\nXNAT-PIC Pipeline: Mask Average\nApply a mask to a parametric map and compute mean value in the ROIs\n\nAuthor: xnatkit maps mask-average (XNAT-PIC layout; SD with ddof=1)\nMailto: -\n{RULE}\n\n"
    );
    let f = |v: Option<f64>| {
        v.map(|x| format!("{x:.2}"))
            .unwrap_or_else(|| "nan".to_owned())
    };
    for (k, r) in stats.iter().enumerate() {
        let s = r.stats.as_ref();
        out.push_str(&format!("ROI number: {}\n", k + 1));
        out.push_str(&format!(
            "ROI file name: mask_{}.nii.gz\n",
            file_safe(&r.roi)
        ));
        out.push_str(&format!("ROI Area: {:.2}\n", r.voxels as f64));
        let q = &quantity.name;
        let u = &quantity.unit;
        out.push_str(&format!("Mean {q}: {} {u}\n", f(s.map(|x| x.mean))));
        out.push_str(&format!("STD {q}: {} {u}\n", f(s.map(|x| x.sd))));
        out.push_str(&format!("Median {q}: {} {u}\n", f(s.map(|x| x.median))));
        if let Some(rate) = &r.rate {
            let rs = rate.stats.as_ref();
            let (n, u) = (&rate.name, &rate.unit);
            out.push_str(&format!("Mean {n}: {} {u}\n", f(rs.map(|x| x.mean))));
            out.push_str(&format!("STD {n}: {} {u}\n", f(rs.map(|x| x.sd))));
            out.push_str(&format!("Median {n}: {} {u}\n", f(rs.map(|x| x.median))));
        }
        out.push_str(DASHES);
        out.push('\n');
    }
    out.into_bytes()
}

/// A ROI name as a file name part.
pub fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "roi".to_owned() } else { s }
}
