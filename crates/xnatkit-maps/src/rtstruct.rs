//! RTSTRUCT ROIs rasterised onto the map's own grid in patient coordinates.
//!
//! The rule (docs/maps.md): a closed planar contour belongs to the slice its
//! ContourImageSequence references when that image is one of the map's;
//! otherwise to the slice whose plane is within half the slice spacing of
//! all its points (nearest if several). Its points are projected to
//! continuous pixel coordinates (pixel centres at integers, since
//! ImagePositionPatient is the centre of the first pixel) and a pixel is
//! inside when its centre is inside the polygon by the even-odd rule, points
//! on an edge or vertex counting as inside. Several contours of one ROI on a
//! slice combine by XOR (even-odd again), so a contour inside another is a
//! hole. Open contours and points carry no area: they are skipped with a
//! warning. Contour parts outside the image are clipped, with a warning.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use crate::Error;
use crate::geometry::{Grid, Vec3};
use crate::input::{element, numbers, text};

const STRUCTURE_SET_ROI_SEQUENCE: Tag = Tag(0x3006, 0x0020);
const ROI_NUMBER: Tag = Tag(0x3006, 0x0022);
const REFERENCED_FRAME_OF_REFERENCE_UID: Tag = Tag(0x3006, 0x0024);
const ROI_NAME: Tag = Tag(0x3006, 0x0026);
const ROI_CONTOUR_SEQUENCE: Tag = Tag(0x3006, 0x0039);
const REFERENCED_ROI_NUMBER: Tag = Tag(0x3006, 0x0084);
const CONTOUR_SEQUENCE: Tag = Tag(0x3006, 0x0040);
const CONTOUR_GEOMETRIC_TYPE: Tag = Tag(0x3006, 0x0042);
const CONTOUR_DATA: Tag = Tag(0x3006, 0x0050);
const CONTOUR_IMAGE_SEQUENCE: Tag = Tag(0x3006, 0x0016);
const REFERENCED_FRAME_OF_REFERENCE_SEQUENCE: Tag = Tag(0x3006, 0x0010);

#[derive(Debug, Clone, PartialEq)]
pub struct Contour {
    pub geometric_type: String,
    pub points: Vec<Vec3>,
    pub referenced_sop: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Roi {
    pub number: i64,
    pub name: String,
    pub frame_of_reference: Option<String>,
    pub contours: Vec<Contour>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RtStruct {
    pub path: PathBuf,
    pub frame_of_reference: Option<String>,
    pub rois: Vec<Roi>,
}

fn items(object: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    element(object, tag).and_then(|e| e.items()).unwrap_or(&[])
}

/// Reads the ROIs of an RTSTRUCT file.
pub fn read(path: &Path) -> Result<RtStruct, Error> {
    let err = |reason: String| Error::RtStruct {
        path: path.to_owned(),
        reason,
    };
    let object = match OpenFileOptions::new().open_file(path) {
        Ok(o) => o.into_inner(),
        // Older structure sets (pydicom's test file among them) are bare
        // data sets without the Part 10 header: implicit VR little endian.
        Err(e) => std::fs::File::open(path)
            .map_err(|io| err(io.to_string()))
            .and_then(|file| {
                InMemDicomObject::read_dataset_with_ts(
                    std::io::BufReader::new(file),
                    &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .map_err(|_| err(e.to_string()))
            })?,
    };
    let modality = text(&object, tags::MODALITY).unwrap_or_default();
    if modality != "RTSTRUCT" {
        return Err(err(format!(
            "Modality is {modality:?}, not RTSTRUCT; pass the structure set file"
        )));
    }
    let frame_of_reference = items(&object, REFERENCED_FRAME_OF_REFERENCE_SEQUENCE)
        .iter()
        .find_map(|i| text(i, tags::FRAME_OF_REFERENCE_UID))
        .or_else(|| text(&object, tags::FRAME_OF_REFERENCE_UID));
    let mut rois: Vec<Roi> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for item in items(&object, STRUCTURE_SET_ROI_SEQUENCE) {
        let Some(number) = numbers(item, ROI_NUMBER).map(|v| v[0] as i64) else {
            continue;
        };
        index.insert(number, rois.len());
        rois.push(Roi {
            number,
            name: text(item, ROI_NAME).unwrap_or_else(|| format!("ROI-{number}")),
            frame_of_reference: text(item, REFERENCED_FRAME_OF_REFERENCE_UID),
            contours: Vec::new(),
        });
    }
    for item in items(&object, ROI_CONTOUR_SEQUENCE) {
        let Some(number) = numbers(item, REFERENCED_ROI_NUMBER).map(|v| v[0] as i64) else {
            continue;
        };
        let at = *index.entry(number).or_insert_with(|| {
            rois.push(Roi {
                number,
                name: format!("ROI-{number}"),
                frame_of_reference: None,
                contours: Vec::new(),
            });
            rois.len() - 1
        });
        for contour in items(item, CONTOUR_SEQUENCE) {
            let data = numbers(contour, CONTOUR_DATA).unwrap_or_default();
            if !data.len().is_multiple_of(3) {
                return Err(err(format!(
                    "ROI {number}: ContourData holds {} numbers, not x/y/z triplets",
                    data.len()
                )));
            }
            let points = data.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
            rois[at].contours.push(Contour {
                geometric_type: text(contour, CONTOUR_GEOMETRIC_TYPE)
                    .unwrap_or_else(|| "CLOSED_PLANAR".to_owned()),
                points,
                referenced_sop: items(contour, CONTOUR_IMAGE_SEQUENCE)
                    .iter()
                    .find_map(|i| text(i, tags::REFERENCED_SOP_INSTANCE_UID)),
            });
        }
    }
    if rois.is_empty() {
        return Err(err("it holds no ROIs".to_owned()));
    }
    Ok(RtStruct {
        path: path.to_owned(),
        frame_of_reference,
        rois,
    })
}

/// One ROI on the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct RoiMask {
    pub number: i64,
    pub name: String,
    /// Per voxel of the grid.
    pub inside: Vec<bool>,
    pub contours_used: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rasterised {
    pub masks: Vec<RoiMask>,
    pub warnings: Vec<String>,
    /// How contours were put on slices: "references" or "geometry".
    pub matched_by: String,
}

/// Whether `(x, y)` lies on segment a–b (within `eps`, pixel units).
fn on_segment(x: f64, y: f64, a: (f64, f64), b: (f64, f64), eps: f64) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return (x - a.0).abs() <= eps && (y - a.1).abs() <= eps;
    }
    let t = ((x - a.0) * dx + (y - a.1) * dy) / len2;
    if !(-1e-12..=1.0 + 1e-12).contains(&t) {
        return false;
    }
    let (px, py) = (a.0 + t * dx, a.1 + t * dy);
    (x - px).abs() <= eps && (y - py).abs() <= eps
}

/// Even-odd point-in-polygon, boundary inclusive.
pub fn inside_polygon(x: f64, y: f64, polygon: &[(f64, f64)]) -> bool {
    let n = polygon.len();
    let mut inside = false;
    for k in 0..n {
        let a = polygon[k];
        let b = polygon[(k + 1) % n];
        if on_segment(x, y, a, b, 1e-6) {
            return true;
        }
        if (a.1 > y) != (b.1 > y) {
            let cross_x = a.0 + (y - a.1) * (b.0 - a.0) / (b.1 - a.1);
            if x < cross_x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Rasterises every ROI of `rt` onto `grid`. `slice_sops[s]` lists the SOP
/// Instance UIDs of the images at slice `s` (empty for a NIfTI map).
pub fn rasterise(
    rt: &RtStruct,
    grid: &Grid,
    slice_sops: &[Vec<String>],
) -> Result<Rasterised, Error> {
    let mut sop_slice: HashMap<&str, usize> = HashMap::new();
    for (s, sops) in slice_sops.iter().enumerate() {
        for sop in sops {
            sop_slice.insert(sop.as_str(), s);
        }
    }
    let resolves = rt.rois.iter().flat_map(|r| &r.contours).any(|c| {
        c.referenced_sop
            .as_deref()
            .is_some_and(|u| sop_slice.contains_key(u))
    });
    let mut warnings = Vec::new();
    if !resolves {
        let roi_frames: BTreeSet<&str> = rt
            .rois
            .iter()
            .filter_map(|r| r.frame_of_reference.as_deref())
            .chain(rt.frame_of_reference.as_deref())
            .collect();
        match &grid.frame_of_reference {
            Some(map_frame) => {
                if let Some(other) = roi_frames.iter().find(|f| **f != map_frame.as_str()) {
                    return Err(Error::FrameOfReference {
                        path: rt.path.clone(),
                        rois: (*other).to_owned(),
                        map: map_frame.clone(),
                    });
                }
            }
            None => warnings.push(
                "the map has no frame of reference (a NIfTI file): the ROIs are placed by patient coordinates alone".to_owned(),
            ),
        }
    }
    let half = grid.slice_spacing() / 2.0 + 1e-3;
    let (rows, cols) = (grid.rows, grid.cols);
    let n_slice = grid.slice_len();
    let mut masks = Vec::with_capacity(rt.rois.len());
    for roi in &rt.rois {
        let mut inside = vec![false; grid.len()];
        let mut used = 0;
        let mut clipped = false;
        let mut off_map = 0;
        for (k, contour) in roi.contours.iter().enumerate() {
            let closed = matches!(
                contour.geometric_type.as_str(),
                "CLOSED_PLANAR" | "INTERPOLATED_PLANAR" | "CLOSEDPLANAR_XOR"
            );
            if !closed || contour.points.len() < 3 {
                warnings.push(format!(
                    "ROI {:?}: contour {} is {} with {} point(s); only closed contours enclose an area, so it is skipped",
                    roi.name,
                    k + 1,
                    contour.geometric_type,
                    contour.points.len()
                ));
                continue;
            }
            let by_reference = if resolves {
                contour
                    .referenced_sop
                    .as_deref()
                    .and_then(|u| sop_slice.get(u).copied())
            } else {
                None
            };
            let slice = by_reference.or_else(|| {
                (0..grid.slices())
                    .filter_map(|s| {
                        let worst = contour
                            .points
                            .iter()
                            .map(|p| grid.distance_to_plane(s, *p).abs())
                            .fold(0.0, f64::max);
                        (worst <= half).then_some((s, worst))
                    })
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(s, _)| s)
            });
            let Some(slice) = slice else {
                off_map += 1;
                continue;
            };
            let polygon: Vec<(f64, f64)> = contour
                .points
                .iter()
                .map(|p| grid.to_pixel(slice, *p))
                .collect();
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(x, y) in &polygon {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if x0 < -0.5 || y0 < -0.5 || x1 > cols as f64 - 0.5 || y1 > rows as f64 - 0.5 {
                clipped = true;
            }
            let lo_x = x0.ceil().max(0.0) as usize;
            let lo_y = y0.ceil().max(0.0) as usize;
            let hi_x = (x1.floor().min(cols as f64 - 1.0)).max(-1.0);
            let hi_y = (y1.floor().min(rows as f64 - 1.0)).max(-1.0);
            if hi_x < 0.0 || hi_y < 0.0 {
                used += 1;
                continue;
            }
            for y in lo_y..=hi_y as usize {
                for x in lo_x..=hi_x as usize {
                    if inside_polygon(x as f64, y as f64, &polygon) {
                        let i = x + cols * y + n_slice * slice;
                        inside[i] = !inside[i];
                    }
                }
            }
            used += 1;
        }
        if clipped {
            warnings.push(format!(
                "ROI {:?} extends beyond the map's field of view: it is clipped to the image",
                roi.name
            ));
        }
        if off_map > 0 {
            warnings.push(format!(
                "ROI {:?}: {off_map} contour(s) lie on no slice of the map (farther than half the slice spacing, {:.3} mm, from every slice plane) and are left out",
                roi.name,
                half - 1e-3
            ));
        }
        masks.push(RoiMask {
            number: roi.number,
            name: roi.name.clone(),
            inside,
            contours_used: used,
        });
    }
    if masks.iter().all(|m| !m.inside.iter().any(|&v| v)) {
        return Err(Error::NoRoiOnMap {
            path: rt.path.clone(),
            reason: warnings.join("; "),
        });
    }
    Ok(Rasterised {
        masks,
        warnings,
        matched_by: if resolves { "references" } else { "geometry" }.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_points_are_inside() {
        let square = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)];
        assert!(inside_polygon(0.0, 0.0, &square));
        assert!(inside_polygon(1.0, 2.0, &square));
        assert!(inside_polygon(1.0, 1.0, &square));
        assert!(!inside_polygon(3.0, 1.0, &square));
        assert!(!inside_polygon(-0.1, 1.0, &square));
    }
}
