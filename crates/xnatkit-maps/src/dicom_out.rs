//! A map as a DICOM MR series in the input's study: one image per slice,
//! 16-bit unsigned integers with RescaleSlope/RescaleIntercept and the unit
//! in RescaleType (what XNAT's viewer and OHIF display as real values), the
//! input's patient, study and frame of reference, and UIDs derived from the
//! input's so reruns are byte-identical. The Parametric Map IOD (float
//! pixels) is not used: OHIF's XNAT plugin does not show it.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use crate::Error;
use crate::geometry::{Grid, dot};
use crate::input::SeriesInfo;
use crate::maps::{Image, Scale};
use crate::uid;

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<String>) {
    obj.put(DataElement::new(
        tag,
        vr,
        PrimitiveValue::from(value.into()),
    ));
}

/// Decimal string that parses back to exactly what is used.
fn ds(v: f64) -> String {
    let text = format!("{v}");
    if text.len() <= 16 {
        text
    } else {
        format!("{v:.9e}")
    }
}

fn ds_list(values: &[f64]) -> String {
    values.iter().map(|v| ds(*v)).collect::<Vec<_>>().join("\\")
}

/// Slope for an image: the fixed one, or its maximum over 60000 rounded to
/// six significant digits (so the DS text is the slope applied).
fn slope_from(scale: Scale, values: impl Iterator<Item = f32>) -> f64 {
    match scale {
        Scale::Fixed(s) => s,
        Scale::FromMaximum => {
            let max = values.filter(|v| v.is_finite()).fold(0f32, f32::max) as f64;
            if max <= 0.0 {
                1.0
            } else {
                format!("{:.5e}", max / 60000.0).parse().unwrap_or(1.0)
            }
        }
    }
}

/// Slice `s` of an image into `out` (one slice long): how
/// [`encode_series`] reads an image that is not in memory whole.
pub type FillSlice<'a> = dyn Fn(usize, &mut [f32]) -> Result<(), Error> + 'a;

/// The DICOM files of `image` (relative names under `folder`), its pixels
/// read a slice at a time from `slice` (`image.data` is not used).
#[allow(clippy::too_many_arguments)]
pub fn encode_series(
    info: &SeriesInfo,
    grid: &Grid,
    image: &Image,
    slice: &FillSlice<'_>,
    index: usize,
    derivation: &str,
    folder: &str,
    mut emit: impl FnMut(String, Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let series_uid = uid::derive(&[&info.series_instance_uid, &image.name, "series"]);
    let n = grid.slice_len();
    let mut plane = vec![0f32; n];
    // A pass over the image, a slice at a time.
    let mut each_slice = |visit: &mut dyn FnMut(&[f32])| -> Result<(), Error> {
        for s in 0..grid.slices() {
            slice(s, &mut plane)?;
            visit(&plane);
        }
        Ok(())
    };
    let slope = match image.scale {
        Scale::Fixed(s) => s,
        Scale::FromMaximum => {
            let mut max = 0f32;
            each_slice(&mut |p| {
                max = max.max(
                    p.iter()
                        .copied()
                        .filter(|v| v.is_finite())
                        .fold(0f32, f32::max),
                )
            })?;
            slope_from(image.scale, std::iter::once(max))
        }
    };
    // Stored values are made slice by slice (and each file handed on as
    // it is encoded): a whole volume of them, and every file of the
    // series, were at the peak of a map's memory.
    let to_stored = |v: f32| {
        if v.is_finite() {
            (v as f64 / slope).round().clamp(0.0, 65535.0) as u16
        } else {
            0
        }
    };
    let mut counts = StoredCounts::default();
    each_slice(&mut |p| counts.add(p.iter().map(|&v| to_stored(v))))?;
    let (centre, width) = counts.window(slope);
    let description: String = format!(
        "{}{}",
        image.description,
        if image.unit.is_empty() {
            String::new()
        } else {
            format!(" [{}]", image.unit)
        }
    )
    .chars()
    .take(64)
    .collect();
    let series_number = info.series_number.unwrap_or(0) * 100 + 1 + index as i64;
    for s in 0..grid.slices() {
        slice(s, &mut plane)?;
        let sop_uid = uid::derive(&[&info.series_instance_uid, &image.name, &s.to_string()]);
        let mut obj = info.header.clone();
        // UTF-8: the derivation text carries the model's symbols (·, −).
        put_str(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        put_str(&mut obj, tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY");
        put_str(
            &mut obj,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::MR_IMAGE_STORAGE,
        );
        put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid.clone());
        put_str(&mut obj, tags::MODALITY, VR::CS, "MR");
        put_str(
            &mut obj,
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            series_uid.clone(),
        );
        put_str(
            &mut obj,
            tags::SERIES_NUMBER,
            VR::IS,
            series_number.to_string(),
        );
        put_str(
            &mut obj,
            tags::SERIES_DESCRIPTION,
            VR::LO,
            description.clone(),
        );
        put_str(&mut obj, tags::DERIVATION_DESCRIPTION, VR::ST, derivation);
        put_str(&mut obj, tags::INSTANCE_NUMBER, VR::IS, (s + 1).to_string());
        let p = grid.positions[s];
        put_str(&mut obj, tags::IMAGE_POSITION_PATIENT, VR::DS, ds_list(&p));
        let o = [
            grid.row_dir[0],
            grid.row_dir[1],
            grid.row_dir[2],
            grid.col_dir[0],
            grid.col_dir[1],
            grid.col_dir[2],
        ];
        put_str(
            &mut obj,
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds_list(&o),
        );
        put_str(
            &mut obj,
            tags::PIXEL_SPACING,
            VR::DS,
            ds_list(&grid.spacing),
        );
        put_str(
            &mut obj,
            tags::SLICE_THICKNESS,
            VR::DS,
            ds(grid.thickness.unwrap_or_else(|| grid.slice_spacing())),
        );
        put_str(
            &mut obj,
            tags::SLICE_LOCATION,
            VR::DS,
            ds(dot(p, grid.normal)),
        );
        if let Some(frame) = &grid.frame_of_reference {
            put_str(
                &mut obj,
                tags::FRAME_OF_REFERENCE_UID,
                VR::UI,
                frame.clone(),
            );
        }
        obj.put(DataElement::new(
            tags::SAMPLES_PER_PIXEL,
            VR::US,
            PrimitiveValue::from(1u16),
        ));
        put_str(
            &mut obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2",
        );
        obj.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(grid.rows as u16),
        ));
        obj.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(grid.cols as u16),
        ));
        obj.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(16u16),
        ));
        obj.put(DataElement::new(
            tags::BITS_STORED,
            VR::US,
            PrimitiveValue::from(16u16),
        ));
        obj.put(DataElement::new(
            tags::HIGH_BIT,
            VR::US,
            PrimitiveValue::from(15u16),
        ));
        obj.put(DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
        put_str(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, "0");
        put_str(&mut obj, tags::RESCALE_SLOPE, VR::DS, ds(slope));
        put_str(
            &mut obj,
            tags::RESCALE_TYPE,
            VR::LO,
            if image.unit.is_empty() {
                "US".to_owned()
            } else {
                image.unit.clone()
            },
        );
        put_str(&mut obj, tags::WINDOW_CENTER, VR::DS, ds(centre));
        put_str(&mut obj, tags::WINDOW_WIDTH, VR::DS, ds(width));
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(plane.iter().map(|&v| to_stored(v)).collect()),
        ));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(uids::MR_IMAGE_STORAGE)
            .media_storage_sop_instance_uid(sop_uid)
            .implementation_class_uid(uid::derive(&["implementation", "xnatkit-maps"]))
            .implementation_version_name(concat!("XNATKIT_", env!("CARGO_PKG_VERSION")));
        let encode_err = |reason: String| Error::Encode {
            what: format!("{} slice {}", image.name, s + 1),
            reason,
        };
        let file = obj.with_meta(meta).map_err(|e| encode_err(e.to_string()))?;
        let mut bytes = Vec::new();
        file.write_all(&mut bytes)
            .map_err(|e| encode_err(e.to_string()))?;
        emit(format!("{folder}/IM{:04}.dcm", s + 1), bytes)?;
    }
    Ok(())
}

/// A count per stored value: the window's percentiles in linear time (the
/// same values as sorting them all), over values seen a slice at a time.
struct StoredCounts {
    counts: Vec<usize>,
}

impl Default for StoredCounts {
    fn default() -> Self {
        StoredCounts {
            counts: vec![0; 1 << 16],
        }
    }
}

impl StoredCounts {
    fn add(&mut self, stored: impl Iterator<Item = u16>) {
        for v in stored.filter(|&v| v > 0) {
            self.counts[usize::from(v)] += 1;
        }
    }

    /// Window from the 1st to the 99th percentile of the non-zero stored
    /// values, in real units.
    fn window(&self, slope: f64) -> (f64, f64) {
        let counts = &self.counts;
        let total: usize = counts.iter().sum();
        if total == 0 {
            return (0.5 * slope, slope);
        }
        // The value at position `k` (from 0) of the sorted non-zero values.
        let kth = |k: usize| {
            let mut seen = 0;
            for (value, &count) in counts.iter().enumerate() {
                seen += count;
                if seen > k {
                    return value as f64;
                }
            }
            0.0
        };
        let at = |p: f64| kth(((total - 1) as f64 * p).round() as usize) * slope;
        let (lo, hi) = (at(0.01), at(0.99));
        let width = (hi - lo).max(slope);
        ((lo + hi) / 2.0, width)
    }
}

/// Window from the 1st to the 99th percentile of the non-zero stored values,
/// in real units.
#[cfg(test)]
fn window(stored: impl Iterator<Item = u16>, slope: f64) -> (f64, f64) {
    let mut counts = StoredCounts::default();
    counts.add(stored);
    counts.window(slope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_by_counting_equals_window_by_sorting() {
        let by_sorting = |stored: &[u16], slope: f64| {
            let mut values: Vec<u16> = stored.iter().copied().filter(|&v| v > 0).collect();
            if values.is_empty() {
                return (0.5 * slope, slope);
            }
            values.sort_unstable();
            let at =
                |p: f64| values[((values.len() - 1) as f64 * p).round() as usize] as f64 * slope;
            let (lo, hi) = (at(0.01), at(0.99));
            let width = (hi - lo).max(slope);
            ((lo + hi) / 2.0, width)
        };
        let mut state = 777u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        for n in [0, 1, 2, 5, 100, 1001, 65_536] {
            let stored: Vec<u16> = (0..n)
                .map(|_| match next() % 4 {
                    0 => 0,
                    1 => (next() % 3) as u16,
                    _ => (next() % 65_536) as u16,
                })
                .collect();
            for slope in [0.1, 1.0, 0.00123] {
                assert_eq!(
                    window(stored.iter().copied(), slope),
                    by_sorting(&stored, slope),
                    "{n} values"
                );
            }
        }
    }
}
