//! Phantom generation: a deterministic normal RNG (xorshift + Box–Muller,
//! so the tests need no RNG crate and give the same numbers every run),
//! Rician magnitude noise, and writers for classic and enhanced
//! multi-frame MR DICOM series and RTSTRUCTs.

use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.next_f64(), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Magnitude of `signal` plus complex Gaussian noise of SD `sigma`.
    pub fn rician(&mut self, signal: f64, sigma: f64) -> f64 {
        let re = signal + sigma * self.normal();
        let im = sigma * self.normal();
        (re * re + im * im).sqrt()
    }
}

/// Slice geometry of a synthetic series.
#[derive(Clone, Debug)]
pub struct Geometry {
    pub rows: usize,
    pub cols: usize,
    pub orientation: [f64; 6],
    /// `[between rows, between columns]`
    pub spacing: [f64; 2],
    pub origin: [f64; 3],
    pub slice_gap: f64,
    pub slices: usize,
}

impl Geometry {
    pub fn axial(rows: usize, cols: usize, slices: usize) -> Self {
        Self {
            rows,
            cols,
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            spacing: [1.0, 1.0],
            origin: [-10.0, -20.0, 5.0],
            slice_gap: 2.0,
            slices,
        }
    }
    pub fn normal(&self) -> [f64; 3] {
        let o = self.orientation;
        [
            o[1] * o[5] - o[2] * o[4],
            o[2] * o[3] - o[0] * o[5],
            o[0] * o[4] - o[1] * o[3],
        ]
    }
    /// IPP of slice `s` (ascending along the normal).
    pub fn position(&self, s: usize) -> [f64; 3] {
        let n = self.normal();
        let d = s as f64 * self.slice_gap;
        [
            self.origin[0] + d * n[0],
            self.origin[1] + d * n[1],
            self.origin[2] + d * n[2],
        ]
    }
}

/// One image to write: slice index, timing, pixels (real values).
pub struct Image {
    pub slice: usize,
    pub echo_time: Option<f64>,
    pub repetition_time: Option<f64>,
    pub b_value: Option<f64>,
    pub pixels: Vec<f64>,
}

pub const SLOPE: f64 = 0.05;
pub const FRAME_OF_REFERENCE: &str = "1.2.826.0.1.3680043.9.7777.1";
pub const STUDY: &str = "1.2.826.0.1.3680043.9.7777.2";
pub const SERIES: &str = "1.2.826.0.1.3680043.9.7777.3";

fn s(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<String>) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v.into())));
}
fn ds(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.6}"))
        .collect::<Vec<_>>()
        .join("\\")
}
fn us(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}
fn seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

fn common(obj: &mut InMemDicomObject, g: &Geometry) {
    s(obj, tags::PATIENT_NAME, VR::PN, "Phantom^Maps");
    s(obj, tags::PATIENT_ID, VR::LO, "PHANTOM");
    s(obj, tags::STUDY_INSTANCE_UID, VR::UI, STUDY);
    s(obj, tags::SERIES_INSTANCE_UID, VR::UI, SERIES);
    s(
        obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        FRAME_OF_REFERENCE,
    );
    s(obj, tags::MODALITY, VR::CS, "MR");
    s(obj, tags::SERIES_NUMBER, VR::IS, "7");
    s(obj, tags::SERIES_DESCRIPTION, VR::LO, "phantom");
    us(obj, tags::SAMPLES_PER_PIXEL, 1);
    s(obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    us(obj, tags::ROWS, g.rows as u16);
    us(obj, tags::COLUMNS, g.cols as u16);
    us(obj, tags::BITS_ALLOCATED, 16);
    us(obj, tags::BITS_STORED, 16);
    us(obj, tags::HIGH_BIT, 15);
    us(obj, tags::PIXEL_REPRESENTATION, 0);
}

fn stored(pixels: &[f64]) -> Vec<u16> {
    pixels
        .iter()
        .map(|v| (v / SLOPE).round().clamp(0.0, 65535.0) as u16)
        .collect()
}

fn save(obj: InMemDicomObject, sop: &str, class: &str, path: &Path) {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(sop);
    obj.with_meta(meta).unwrap().write_to_file(path).unwrap();
}

/// Classic MR images, one file per image; files are named in `order`
/// (index into `images`) so tests can make file order differ from space.
pub fn write_classic(dir: &Path, g: &Geometry, images: &[Image], order: &[usize]) {
    std::fs::create_dir_all(dir).unwrap();
    for (file_index, &k) in order.iter().enumerate() {
        let image = &images[k];
        let mut obj = InMemDicomObject::new_empty();
        common(&mut obj, g);
        let sop = format!("1.2.826.0.1.3680043.9.7777.4.{k}");
        s(
            &mut obj,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::MR_IMAGE_STORAGE,
        );
        s(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop.clone());
        s(
            &mut obj,
            tags::INSTANCE_NUMBER,
            VR::IS,
            (file_index + 1).to_string(),
        );
        s(
            &mut obj,
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            ds(&g.position(image.slice)),
        );
        s(
            &mut obj,
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds(&g.orientation),
        );
        s(&mut obj, tags::PIXEL_SPACING, VR::DS, ds(&g.spacing));
        s(&mut obj, tags::SLICE_THICKNESS, VR::DS, ds(&[g.slice_gap]));
        if let Some(te) = image.echo_time {
            s(&mut obj, tags::ECHO_TIME, VR::DS, ds(&[te]));
        }
        if let Some(tr) = image.repetition_time {
            s(&mut obj, tags::REPETITION_TIME, VR::DS, ds(&[tr]));
        }
        if let Some(b) = image.b_value {
            obj.put(DataElement::new(
                tags::DIFFUSION_B_VALUE,
                VR::FD,
                PrimitiveValue::from(b),
            ));
        }
        s(&mut obj, tags::RESCALE_SLOPE, VR::DS, ds(&[SLOPE]));
        s(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, "0");
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(stored(&image.pixels).into()),
        ));
        save(
            obj,
            &sop,
            uids::MR_IMAGE_STORAGE,
            &dir.join(format!("IM{file_index:04}.dcm")),
        );
    }
}

/// One enhanced MR image file holding every image as a frame, geometry,
/// timing and rescale in per-frame functional groups.
pub fn write_multiframe(path: &Path, g: &Geometry, images: &[Image]) {
    let mut obj = InMemDicomObject::new_empty();
    common(&mut obj, g);
    let sop = "1.2.826.0.1.3680043.9.7777.5";
    s(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::ENHANCED_MR_IMAGE_STORAGE,
    );
    s(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop);
    s(
        &mut obj,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        images.len().to_string(),
    );
    let mut shared = InMemDicomObject::new_empty();
    let mut orientation = InMemDicomObject::new_empty();
    s(
        &mut orientation,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds(&g.orientation),
    );
    seq(&mut shared, Tag(0x0020, 0x9116), vec![orientation]);
    let mut measures = InMemDicomObject::new_empty();
    s(&mut measures, tags::PIXEL_SPACING, VR::DS, ds(&g.spacing));
    s(
        &mut measures,
        tags::SLICE_THICKNESS,
        VR::DS,
        ds(&[g.slice_gap]),
    );
    seq(&mut shared, Tag(0x0028, 0x9110), vec![measures]);
    let mut transform = InMemDicomObject::new_empty();
    s(&mut transform, tags::RESCALE_SLOPE, VR::DS, ds(&[SLOPE]));
    s(&mut transform, tags::RESCALE_INTERCEPT, VR::DS, "0");
    s(&mut transform, tags::RESCALE_TYPE, VR::LO, "US");
    seq(&mut shared, Tag(0x0028, 0x9145), vec![transform]);
    seq(&mut obj, Tag(0x5200, 0x9229), vec![shared]);
    let mut per_frame = Vec::new();
    let mut all = Vec::new();
    for image in images {
        let mut frame = InMemDicomObject::new_empty();
        let mut position = InMemDicomObject::new_empty();
        s(
            &mut position,
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            ds(&g.position(image.slice)),
        );
        seq(&mut frame, Tag(0x0020, 0x9113), vec![position]);
        if let Some(te) = image.echo_time {
            let mut echo = InMemDicomObject::new_empty();
            echo.put(DataElement::new(
                Tag(0x0018, 0x9082),
                VR::FD,
                PrimitiveValue::from(te),
            ));
            seq(&mut frame, Tag(0x0018, 0x9114), vec![echo]);
        }
        if let Some(tr) = image.repetition_time {
            let mut timing = InMemDicomObject::new_empty();
            timing.put(DataElement::new(
                tags::REPETITION_TIME,
                VR::FD,
                PrimitiveValue::from(tr),
            ));
            seq(&mut frame, Tag(0x0018, 0x9112), vec![timing]);
        }
        if let Some(b) = image.b_value {
            let mut diffusion = InMemDicomObject::new_empty();
            diffusion.put(DataElement::new(
                tags::DIFFUSION_B_VALUE,
                VR::FD,
                PrimitiveValue::from(b),
            ));
            seq(&mut frame, Tag(0x0018, 0x9117), vec![diffusion]);
        }
        per_frame.push(frame);
        all.extend(stored(&image.pixels));
    }
    seq(&mut obj, Tag(0x5200, 0x9230), per_frame);
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(all.into()),
    ));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    save(obj, sop, uids::ENHANCED_MR_IMAGE_STORAGE, path);
}

/// A ROI for [`write_rtstruct`]: name and contours (type, points in mm,
/// referenced SOP UID).
pub struct RoiSpec {
    pub name: String,
    pub contours: Vec<(String, Vec<[f64; 3]>, Option<String>)>,
}

pub fn write_rtstruct(path: &Path, frame_of_reference: &str, rois: &[RoiSpec]) {
    let mut obj = InMemDicomObject::new_empty();
    let sop = "1.2.826.0.1.3680043.9.7777.6";
    s(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::RT_STRUCTURE_SET_STORAGE,
    );
    s(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop);
    s(&mut obj, tags::MODALITY, VR::CS, "RTSTRUCT");
    s(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, STUDY);
    s(
        &mut obj,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.9.7777.7",
    );
    let mut rfor = InMemDicomObject::new_empty();
    s(
        &mut rfor,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        frame_of_reference,
    );
    seq(&mut obj, Tag(0x3006, 0x0010), vec![rfor]);
    let mut set = Vec::new();
    let mut contours = Vec::new();
    for (k, roi) in rois.iter().enumerate() {
        let mut item = InMemDicomObject::new_empty();
        s(&mut item, Tag(0x3006, 0x0022), VR::IS, (k + 1).to_string());
        s(&mut item, Tag(0x3006, 0x0024), VR::UI, frame_of_reference);
        s(&mut item, Tag(0x3006, 0x0026), VR::LO, roi.name.clone());
        set.push(item);
        let mut rc = InMemDicomObject::new_empty();
        s(&mut rc, Tag(0x3006, 0x0084), VR::IS, (k + 1).to_string());
        let mut cs = Vec::new();
        for (kind, points, reference) in &roi.contours {
            let mut c = InMemDicomObject::new_empty();
            s(&mut c, Tag(0x3006, 0x0042), VR::CS, kind.clone());
            s(
                &mut c,
                Tag(0x3006, 0x0046),
                VR::IS,
                points.len().to_string(),
            );
            let flat: Vec<f64> = points.iter().flatten().copied().collect();
            s(&mut c, Tag(0x3006, 0x0050), VR::DS, ds(&flat));
            if let Some(r) = reference {
                let mut ci = InMemDicomObject::new_empty();
                s(
                    &mut ci,
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    uids::MR_IMAGE_STORAGE,
                );
                s(
                    &mut ci,
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    r.clone(),
                );
                seq(&mut c, Tag(0x3006, 0x0016), vec![ci]);
            }
            cs.push(c);
        }
        seq(&mut rc, Tag(0x3006, 0x0040), cs);
        contours.push(rc);
    }
    seq(&mut obj, Tag(0x3006, 0x0020), set);
    seq(&mut obj, Tag(0x3006, 0x0039), contours);
    save(obj, sop, uids::RT_STRUCTURE_SET_STORAGE, path);
}

/// Compartment of pixel (col, row): 0 background, 1..=3 three tissue
/// blocks side by side in the middle rows.
pub fn compartment(g: &Geometry, col: usize, row: usize) -> usize {
    let margin_r = g.rows / 6;
    if row < margin_r || row >= g.rows - margin_r {
        return 0;
    }
    let band = (g.cols - 4) / 3;
    if col < 2 || col >= 2 + 3 * band {
        return 0;
    }
    1 + (col - 2) / band
}

/// Images of a phantom: `signal(compartment, slice, k)` at `times[k]`,
/// Rician noise of SD `sigma`; `axis` is "te", "tr" or "b".
pub fn phantom<F>(
    g: &Geometry,
    times: &[f64],
    sigma: f64,
    seed: u64,
    signal: F,
    axis: &str,
) -> Vec<Image>
where
    F: Fn(usize, usize, usize) -> f64,
{
    let mut rng = Rng::new(seed);
    let mut images = Vec::new();
    for slice in 0..g.slices {
        for (k, &t) in times.iter().enumerate() {
            let mut pixels = Vec::with_capacity(g.rows * g.cols);
            for row in 0..g.rows {
                for col in 0..g.cols {
                    let c = compartment(g, col, row);
                    let clean = if c == 0 { 0.0 } else { signal(c, slice, k) };
                    pixels.push(rng.rician(clean, sigma));
                }
            }
            images.push(Image {
                slice,
                echo_time: (axis == "te").then_some(t),
                repetition_time: (axis == "tr").then_some(t),
                b_value: (axis == "b").then_some(t),
                pixels,
            });
        }
    }
    images
}

/// Reads a NIfTI output with the nifti crate: (dims, data x-fastest, sform rows).
pub fn read_nifti(path: &Path) -> ([usize; 3], Vec<f64>, [[f32; 4]; 3]) {
    use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
    let obj = ReaderOptions::new().read_file(path).unwrap();
    let h = obj.header().clone();
    let arr = obj.into_volume().into_ndarray::<f64>().unwrap();
    let shape = arr.shape().to_vec();
    let data: Vec<f64> = arr.t().iter().copied().collect();
    (
        [shape[0], shape[1], *shape.get(2).unwrap_or(&1)],
        data,
        [h.srow_x, h.srow_y, h.srow_z],
    )
}

/// Bias and spread (relative) of `estimates` against `truth`.
pub fn bias_spread(estimates: &[f64], truth: f64) -> (f64, f64) {
    let n = estimates.len() as f64;
    let mean = estimates.iter().sum::<f64>() / n;
    let sd = (estimates.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    ((mean - truth) / truth, sd / truth)
}

/// A text attribute of a DICOM file, trimmed.
pub fn read_text(path: &Path, tag: Tag) -> String {
    let obj = dicom_object::open_file(path).unwrap();
    obj.element(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_owned()
}
