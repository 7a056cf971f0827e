//! The DICOM attributes of one series: those shared by every image (patient,
//! study, series, equipment, MR acquisition, CEST series values), built once,
//! and those of each image (geometry, timing, CEST offset, pixels).

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use crate::acquisition;
use crate::cest::{self, Cest};
use crate::jcamp::ParamFile;
use crate::pixels::{self, ds};
use crate::series::{Reconstruction, SeriesError};
use crate::uid;
use crate::visu::Visu;

/// Which slice package a series holds.
pub(crate) struct PackageSeries {
    pub(crate) index: usize,
    /// Packages in the reconstruction.
    pub(crate) count: usize,
    /// Slices of this package (2-D frames).
    pub(crate) slices: usize,
    /// Images this series will hold.
    pub(crate) images: usize,
    pub(crate) slice_distance: Option<f64>,
}

/// Attributes shared by every image of the series, built once.
pub(crate) struct SeriesTemplate {
    base: InMemDicomObject,
    pub(crate) series_uid: String,
    pub(crate) description: String,
}

/// Truncate to a VR's maximum length and drop characters that would split
/// a single value (`\`) or are control characters.
fn clean(text: &str, max_chars: usize) -> String {
    text.chars()
        .map(|c| if c == '\\' { '/' } else { c })
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<String>) {
    obj.put(DataElement::new(
        tag,
        vr,
        PrimitiveValue::from(value.into()),
    ));
}

fn put_ds(obj: &mut InMemDicomObject, tag: Tag, values: &[f64]) {
    let text = values.iter().map(|v| ds(*v)).collect::<Vec<_>>().join("\\");
    put_str(obj, tag, VR::DS, text);
}

fn put_opt_ds(obj: &mut InMemDicomObject, tag: Tag, value: Option<f64>) {
    if let Some(v) = value.filter(|v| v.is_finite()) {
        put_ds(obj, tag, &[v]);
    }
}

impl SeriesTemplate {
    pub(crate) fn new(
        recon: &Reconstruction<'_>,
        cest: Option<&Cest>,
        package: &PackageSeries,
    ) -> SeriesTemplate {
        let visu = recon.visu;
        let p = &visu.params;
        let subject = recon.study.subject.as_ref();
        let from_subject = |name: &str| subject.and_then(|s| s.str(name)).unwrap_or_default();
        let mut obj = InMemDicomObject::new_empty();
        put_str(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        let image_type = if recon.has_reco {
            "ORIGINAL\\PRIMARY\\OTHER"
        } else {
            "DERIVED\\SECONDARY\\OTHER"
        };
        put_str(&mut obj, tags::IMAGE_TYPE, VR::CS, image_type);
        put_str(
            &mut obj,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::MR_IMAGE_STORAGE,
        );

        // Patient: visu_pars first, the study's subject file as fallback.
        let name = p
            .str("VisuSubjectName")
            .filter(|s| !s.is_empty())
            .unwrap_or(from_subject("SUBJECT_name_string"));
        put_str(&mut obj, tags::PATIENT_NAME, VR::PN, clean(name, 64));
        let id = p
            .str("VisuSubjectId")
            .filter(|s| !s.is_empty())
            .unwrap_or(from_subject("SUBJECT_id"));
        put_str(&mut obj, tags::PATIENT_ID, VR::LO, clean(id, 64));
        let birth = p.str("VisuSubjectBirthDate").unwrap_or_default();
        let birth = if birth.len() == 8 && birth.bytes().all(|b| b.is_ascii_digit()) {
            birth
        } else {
            ""
        };
        put_str(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, birth);
        let sex = p
            .str("VisuSubjectSex")
            .or_else(|| subject.and_then(|s| s.str("SUBJECT_sex").or(s.str("SUBJECT_gender"))))
            .unwrap_or_default();
        let sex = match sex.to_ascii_uppercase().as_str() {
            "MALE" | "M" => "M",
            "FEMALE" | "F" => "F",
            "UNDEFINED" | "OTHER" | "O" => "O",
            _ => "",
        };
        put_str(&mut obj, tags::PATIENT_SEX, VR::CS, sex);
        put_opt_ds(
            &mut obj,
            tags::PATIENT_WEIGHT,
            p.f64("VisuSubjectWeight")
                .or_else(|| subject.and_then(|s| s.f64("SUBJECT_weight")))
                .filter(|w| *w > 0.0),
        );
        if let Some(comment) = p.str("VisuSubjectComment").filter(|s| !s.is_empty()) {
            put_str(
                &mut obj,
                tags::PATIENT_COMMENTS,
                VR::LT,
                clean(comment, 10240),
            );
        }
        match p.str("VisuSubjectType") {
            Some("Quadruped") => put_str(
                &mut obj,
                tags::ANATOMICAL_ORIENTATION_TYPE,
                VR::CS,
                "QUADRUPED",
            ),
            Some("Biped") => put_str(&mut obj, tags::ANATOMICAL_ORIENTATION_TYPE, VR::CS, "BIPED"),
            _ => {}
        }

        // Study.
        put_str(
            &mut obj,
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            recon.study.study_uid.clone(),
        );
        let study_date = p.get("VisuStudyDate").and_then(crate::dates::parse);
        put_str(
            &mut obj,
            tags::STUDY_DATE,
            VR::DA,
            study_date
                .as_ref()
                .map(|d| d.date.clone())
                .unwrap_or_default(),
        );
        put_str(
            &mut obj,
            tags::STUDY_TIME,
            VR::TM,
            study_date
                .as_ref()
                .map(|d| d.time.clone())
                .unwrap_or_default(),
        );
        if let Some(offset) = study_date.as_ref().and_then(|d| d.utc_offset.clone()) {
            put_str(&mut obj, tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, offset);
        }
        let study_id = p
            .str("VisuStudyId")
            .filter(|s| !s.is_empty())
            .or_else(|| subject.and_then(|s| s.str("SUBJECT_study_name")))
            .unwrap_or_default();
        put_str(&mut obj, tags::STUDY_ID, VR::SH, clean(study_id, 16));
        let study_description = p
            .str("VisuStudyDescription")
            .filter(|s| !s.is_empty() && *s != "\\")
            .or_else(|| subject.and_then(|s| s.str("SUBJECT_study_name")))
            .unwrap_or_default();
        put_str(
            &mut obj,
            tags::STUDY_DESCRIPTION,
            VR::LO,
            clean(study_description, 64),
        );
        put_str(
            &mut obj,
            tags::REFERRING_PHYSICIAN_NAME,
            VR::PN,
            clean(p.str("VisuStudyReferringPhysician").unwrap_or_default(), 64),
        );
        put_str(&mut obj, tags::ACCESSION_NUMBER, VR::SH, "");

        // Series.
        let mut uid_parts = vec![
            "series".to_owned(),
            recon.study.study_uid.clone(),
            recon.expno.to_owned(),
            recon.procno.to_owned(),
            p.str("VisuUid").unwrap_or_default().to_owned(),
        ];
        // Each slice package of a multi-package scan is its own series; a
        // single-package scan keeps the UID it always had.
        if package.count > 1 {
            uid_parts.push(format!("package {}", package.index + 1));
        }
        let uid_parts: Vec<&str> = uid_parts.iter().map(String::as_str).collect();
        let series_uid = uid::derive(&uid_parts);
        put_str(&mut obj, tags::MODALITY, VR::CS, "MR");
        put_str(
            &mut obj,
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            series_uid.clone(),
        );
        // Type 2C that validators expect; ParaVision does not record laterality.
        put_str(&mut obj, tags::LATERALITY, VR::CS, "");
        // EXPNO·100 + PROCNO keeps reconstructions of one scan apart and in
        // order; packages of a multi-package scan append two digits.
        let mut series_number = recon.expno.parse::<u64>().unwrap_or(0) * 100
            + recon.procno.parse::<u64>().unwrap_or(0);
        if package.count > 1 {
            series_number = series_number * 100 + package.index as u64 + 1;
        }
        put_str(
            &mut obj,
            tags::SERIES_NUMBER,
            VR::IS,
            series_number.to_string(),
        );
        let protocol = p
            .str("VisuAcquisitionProtocol")
            .or_else(|| recon.acqp.and_then(|a| a.str("ACQ_protocol_name")))
            .or_else(|| recon.acqp.and_then(|a| a.str("ACQ_scan_name")))
            .unwrap_or_default();
        let mut description = clean(protocol, 64);
        let mut suffix = String::new();
        if !recon.has_reco || recon.procno != "1" {
            suffix.push_str(&format!(" (reco {})", recon.procno));
        }
        if package.count > 1 {
            suffix.push_str(&format!(" (package {})", package.index + 1));
        }
        if !suffix.is_empty() {
            description = clean(
                &format!("{}{suffix}", clean(protocol, 64 - suffix.len())),
                64,
            );
        }
        put_str(
            &mut obj,
            tags::SERIES_DESCRIPTION,
            VR::LO,
            description.clone(),
        );
        put_str(&mut obj, tags::PROTOCOL_NAME, VR::LO, clean(protocol, 64));
        if let Some(d) = p
            .get("VisuSeriesDate")
            .or(p.get("VisuAcqDate"))
            .and_then(crate::dates::parse)
        {
            put_str(&mut obj, tags::SERIES_DATE, VR::DA, d.date);
            put_str(&mut obj, tags::SERIES_TIME, VR::TM, d.time);
        }
        if let Some(d) = p.get("VisuAcqDate").and_then(crate::dates::parse) {
            put_str(&mut obj, tags::ACQUISITION_DATE, VR::DA, d.date.clone());
            put_str(&mut obj, tags::ACQUISITION_TIME, VR::TM, d.time.clone());
            put_str(&mut obj, tags::CONTENT_DATE, VR::DA, d.date);
            put_str(&mut obj, tags::CONTENT_TIME, VR::TM, d.time);
        }
        let position = p.str("VisuSubjectPosition").unwrap_or("Head_Supine");
        if let Some(code) = patient_position(position) {
            put_str(&mut obj, tags::PATIENT_POSITION, VR::CS, code);
        }

        // Equipment.
        let manufacturer = p.str("VisuManufacturer").unwrap_or("Bruker BioSpin");
        put_str(
            &mut obj,
            tags::MANUFACTURER,
            VR::LO,
            clean(manufacturer, 64),
        );
        if let Some(v) = p.str("VisuInstitution").filter(|s| !s.is_empty()) {
            put_str(&mut obj, tags::INSTITUTION_NAME, VR::LO, clean(v, 64));
        }
        if let Some(v) = p.str("VisuStation").filter(|s| !s.is_empty()) {
            put_str(&mut obj, tags::STATION_NAME, VR::SH, clean(v, 16));
            put_str(
                &mut obj,
                tags::MANUFACTURER_MODEL_NAME,
                VR::LO,
                clean(v, 64),
            );
        }
        if let Some(v) = p.str("VisuSystemOrderNumber").filter(|s| !s.is_empty()) {
            put_str(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, clean(v, 64));
        }
        let software = format!(
            "{} {}",
            p.str("VisuCreator").unwrap_or("ParaVision"),
            p.str("VisuCreatorVersion").unwrap_or_default()
        );
        put_str(
            &mut obj,
            tags::SOFTWARE_VERSIONS,
            VR::LO,
            clean(&software, 64),
        );

        // Frame of reference: one per study and declared subject position, so
        // every series acquired in that position overlays.
        let frame_of_reference_uid = uid::derive(&["for", &recon.study.study_uid, position]);
        put_str(
            &mut obj,
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            frame_of_reference_uid,
        );
        put_str(&mut obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");

        // MR acquisition.
        let sequence = p.str("VisuAcqSequenceName").unwrap_or_default();
        put_str(&mut obj, tags::SEQUENCE_NAME, VR::SH, clean(sequence, 16));
        put_str(
            &mut obj,
            tags::SCANNING_SEQUENCE,
            VR::CS,
            scanning_sequence(visu),
        );
        put_str(&mut obj, tags::SEQUENCE_VARIANT, VR::CS, "NONE");
        put_str(&mut obj, tags::SCAN_OPTIONS, VR::CS, "");
        put_str(
            &mut obj,
            tags::MR_ACQUISITION_TYPE,
            VR::CS,
            if visu.dim == 3 { "3D" } else { "2D" },
        );
        put_opt_ds(
            &mut obj,
            tags::NUMBER_OF_AVERAGES,
            p.f64("VisuAcqNumberOfAverages"),
        );
        let frequency = p.f64("VisuAcqImagingFrequency");
        put_opt_ds(&mut obj, tags::IMAGING_FREQUENCY, frequency);
        if let Some(nucleus) = p.str("VisuAcqImagedNucleus").filter(|s| !s.is_empty()) {
            put_str(&mut obj, tags::IMAGED_NUCLEUS, VR::SH, clean(nucleus, 16));
        }
        // PV5/6 have no field strength in visu_pars: derive it from the proton frequency.
        let field = p
            .f64("VisuMagneticFieldStrength")
            .or_else(|| frequency.map(|f| (f / 42.577_478_5 * 100.0).round() / 100.0));
        put_opt_ds(&mut obj, tags::MAGNETIC_FIELD_STRENGTH, field);
        // Echoes per excitation: `VisuAcqEchoTrainLength`, else the RARE
        // factor of a RARE-family method (RARE, RAREVTR, FAIR_RARE; other
        // methods have no PVM_RareFactor). A T1 map of the series fitted
        // later needs it for the effective recovery time (docs/maps.md).
        let echo_train = p.f64("VisuAcqEchoTrainLength").or_else(|| {
            recon
                .method
                .and_then(|m| m.f64("PVM_RareFactor"))
                .filter(|v| v.is_finite() && *v >= 1.0)
        });
        put_str(
            &mut obj,
            tags::ECHO_TRAIN_LENGTH,
            VR::IS,
            echo_train
                .map(|v| format!("{}", v.round() as i64))
                .unwrap_or_default(),
        );
        put_opt_ds(
            &mut obj,
            tags::PIXEL_BANDWIDTH,
            p.f64("VisuAcqPixelBandwidth"),
        );
        put_opt_ds(&mut obj, tags::FLIP_ANGLE, p.f64("VisuAcqFlipAngle"));
        if let Some(steps) = p.f64("VisuAcqPhaseEncSteps") {
            put_str(
                &mut obj,
                tags::NUMBER_OF_PHASE_ENCODING_STEPS,
                VR::IS,
                format!("{}", steps.round() as i64),
            );
        }
        if let Some(direction) = phase_direction(p) {
            put_str(
                &mut obj,
                tags::IN_PLANE_PHASE_ENCODING_DIRECTION,
                VR::CS,
                direction,
            );
        }
        if let Some(coil) = p.str("VisuCoilReceiveName").filter(|s| !s.is_empty()) {
            put_str(&mut obj, tags::RECEIVE_COIL_NAME, VR::SH, clean(coil, 16));
        }
        if let Some(ms) = p.f64("VisuAcqScanTime").filter(|t| t.is_finite()) {
            // Seconds (ParaVision gives ms); the dictionary VR is FD.
            obj.put(DataElement::new(
                tags::ACQUISITION_DURATION,
                VR::FD,
                PrimitiveValue::from(ms / 1000.0),
            ));
        }
        put_str(
            &mut obj,
            tags::IMAGES_IN_ACQUISITION,
            VR::IS,
            package.images.to_string(),
        );
        // Slices per volume of this package, which XNAT-PIC's scripts and
        // dcm2niix use to split volumes: the planes of a 3-D frame, else the
        // package's slices (not acqp NSLICES, which counts every package).
        let slices_per_volume = if visu.dim == 3 {
            visu.planes_per_frame()
        } else {
            package.slices
        };
        obj.put(DataElement::new(
            tags::NUMBER_OF_SLICES,
            VR::US,
            PrimitiveValue::from(u16::try_from(slices_per_volume).unwrap_or(u16::MAX)),
        ));
        if visu.dim == 2 {
            put_opt_ds(
                &mut obj,
                tags::SPACING_BETWEEN_SLICES,
                package.slice_distance,
            );
        }

        // Image pixel description (same for every image).
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
        for tag in [tags::BITS_ALLOCATED, tags::BITS_STORED] {
            obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(16u16)));
        }
        obj.put(DataElement::new(
            tags::HIGH_BIT,
            VR::US,
            PrimitiveValue::from(15u16),
        ));
        if let Some(cest) = cest {
            put_cest_series(&mut obj, cest);
        }

        SeriesTemplate {
            base: obj,
            series_uid,
            description,
        }
    }

    pub(crate) fn sop_uid(&self, instance: usize) -> String {
        uid::derive(&["image", &self.series_uid, &instance.to_string()])
    }

    pub(crate) fn image(
        &self,
        recon: &Reconstruction<'_>,
        cest: Option<&Cest>,
        frame: usize,
        plane: usize,
        index: usize,
        encoded: pixels::Encoded,
    ) -> Result<InMemDicomObject, SeriesError> {
        let visu = recon.visu;
        let geometry_err = |problem: String| SeriesError::Geometry {
            path: recon.visu_path.to_owned(),
            problem,
        };
        let mut obj = self.base.clone();
        let instance = index + 1;
        put_str(
            &mut obj,
            tags::SOP_INSTANCE_UID,
            VR::UI,
            self.sop_uid(instance),
        );
        put_str(
            &mut obj,
            tags::INSTANCE_NUMBER,
            VR::IS,
            instance.to_string(),
        );

        let orientation = visu
            .numbers_for_frame("VisuCoreOrientation", 9, frame)
            .ok_or_else(|| {
                geometry_err(format!(
                    "VisuCoreOrientation has no 3x3 matrix for frame {frame}"
                ))
            })?;
        let position = visu
            .numbers_for_frame("VisuCorePosition", 3, frame)
            .ok_or_else(|| {
                geometry_err(format!(
                    "VisuCorePosition has no position for frame {frame}"
                ))
            })?;
        let layout = visu.layout(frame);
        obj.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(u16::try_from(layout.rows).unwrap_or(u16::MAX)),
        ));
        obj.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(u16::try_from(layout.columns).unwrap_or(u16::MAX)),
        ));
        // Row spacing (distance between rows) first.
        put_ds(
            &mut obj,
            tags::PIXEL_SPACING,
            &[layout.row_spacing, layout.column_spacing],
        );
        let normal = [orientation[6], orientation[7], orientation[8]];
        let offset = visu.plane_offset(&layout, plane);
        let ipp = [0, 1, 2].map(|i| position[i] + offset * normal[i]);
        let thickness = match layout.plane_step {
            Some(step) => Some(step),
            None => visu.number_for_frame("VisuCoreFrameThickness", frame),
        };
        put_ds(&mut obj, tags::IMAGE_POSITION_PATIENT, &ipp);
        put_ds(&mut obj, tags::IMAGE_ORIENTATION_PATIENT, &orientation[..6]);
        put_ds(
            &mut obj,
            tags::SLICE_LOCATION,
            &[ipp[0] * normal[0] + ipp[1] * normal[1] + ipp[2] * normal[2]],
        );
        put_str(
            &mut obj,
            tags::SLICE_THICKNESS,
            VR::DS,
            thickness.map(ds).unwrap_or_default(),
        );
        // 3-D: the step between planes, not VisuCoreSlicePacksSliceDist
        // (which is the slab thickness there).
        if let Some(step) = layout.plane_step {
            put_ds(&mut obj, tags::SPACING_BETWEEN_SLICES, &[step]);
        }

        let echo_time = visu.number_for_frame("VisuAcqEchoTime", frame);
        put_str(
            &mut obj,
            tags::ECHO_TIME,
            VR::DS,
            echo_time.map(ds).unwrap_or_default(),
        );
        if let Some(echo_group) = visu.group_position("FG_ECHO") {
            let echo = visu.group_indices(frame)[echo_group] + 1;
            put_str(&mut obj, tags::ECHO_NUMBERS, VR::IS, echo.to_string());
        }
        let tr = acquisition::repetition_time(recon, frame);
        put_str(
            &mut obj,
            tags::REPETITION_TIME,
            VR::DS,
            tr.map(ds).unwrap_or_default(),
        );
        put_opt_ds(
            &mut obj,
            tags::INVERSION_TIME,
            visu.number_for_frame("VisuAcqInversionTime", frame)
                .filter(|t| *t > 0.0),
        );
        if let Some(diffusion) = acquisition::diffusion(recon, frame) {
            put_diffusion(&mut obj, &diffusion);
        }
        if let Some(inversion) = acquisition::inversion(visu, frame) {
            put_inversion(&mut obj, &inversion);
        }

        if let Some(cest) = cest {
            put_cest_frame(&mut obj, cest, visu, frame, tr);
        }

        obj.put(DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(u16::from(encoded.signed)),
        ));
        put_str(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, encoded.intercept);
        put_str(&mut obj, tags::RESCALE_SLOPE, VR::DS, encoded.slope);
        put_str(&mut obj, tags::RESCALE_TYPE, VR::LO, "US");
        let width = (encoded.real_max - encoded.real_min).max(1.0);
        put_ds(
            &mut obj,
            tags::WINDOW_CENTER,
            &[(encoded.real_max + encoded.real_min) / 2.0],
        );
        put_ds(&mut obj, tags::WINDOW_WIDTH, &[width]);
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(encoded.words.into()),
        ));
        Ok(obj)
    }
}

/// Private creator of our ParaVision block, reserved at (1061,0011) so its
/// elements are (1061,11xx), beside the CEST block (1061,10xx).
pub const PARAVISION_CREATOR: &str = "XNATKIT ParaVision";
const PARAVISION_BLOCK: u16 = 0x11;

fn put_paravision_private(obj: &mut InMemDicomObject, element: u16, vr: VR, value: String) {
    put_str(
        obj,
        Tag(cest::GROUP, PARAVISION_BLOCK),
        VR::LO,
        PARAVISION_CREATOR,
    );
    put_str(
        obj,
        Tag(cest::GROUP, (PARAVISION_BLOCK << 8) | element),
        vr,
        value,
    );
}

/// Diffusion as dcm2niix reads it from classic MR images, at the top level
/// where XNAT-PIC's ADC script (MATLAB `dicominfo(...).DiffusionBValue`) also
/// finds it: DiffusionDirectionality (0018,9075), DiffusionBValue (0018,9087,
/// FD) = nominal b, DiffusionGradientOrientation (0018,9089, FD×3, patient
/// frame). No b-matrix: dcm2niix before v1.0.20230411 "repairs" any Bruker
/// b-matrix whose trace is the b-value as if it had ParaVision's own export
/// bug, and writes wrong vectors. The effective b goes to (1061,1101).
fn put_diffusion(obj: &mut InMemDicomObject, diffusion: &acquisition::Diffusion) {
    let fd = |tag: Tag, values: &[f64]| {
        DataElement::new(
            tag,
            VR::FD,
            PrimitiveValue::F64(values.iter().copied().collect()),
        )
    };
    let directionality = if diffusion.direction.is_some() {
        "DIRECTIONAL"
    } else {
        "NONE"
    };
    put_str(obj, tags::DIFFUSION_DIRECTIONALITY, VR::CS, directionality);
    obj.put(fd(tags::DIFFUSION_B_VALUE, &[diffusion.nominal_b]));
    if let Some(g) = diffusion.direction {
        obj.put(fd(tags::DIFFUSION_GRADIENT_ORIENTATION, &g));
    }
    if let Some(effective) = diffusion.effective_b {
        put_paravision_private(obj, 0x01, VR::DS, ds(effective));
    }
}

/// FAIR inversion mode: (1061,1102) mode, (1061,1103) index along
/// FG_IRMODE, and ImageComments for people.
fn put_inversion(obj: &mut InMemDicomObject, inversion: &acquisition::Inversion) {
    put_paravision_private(obj, 0x02, VR::CS, clean(&inversion.mode, 16));
    put_paravision_private(obj, 0x03, VR::IS, inversion.index.to_string());
    put_str(
        obj,
        tags::IMAGE_COMMENTS,
        VR::LT,
        format!(
            "FAIR inversion {} ({} of {} along FG_IRMODE{})",
            inversion.mode,
            inversion.index,
            inversion.count,
            if inversion.from_order {
                ", mode assumed from order"
            } else {
                ""
            }
        ),
    );
}

fn put_private(obj: &mut InMemDicomObject, element: u16, vr: VR, value: String) {
    put_str(obj, Tag(cest::GROUP, 0x1000 | element), vr, value);
}

fn put_private_number(obj: &mut InMemDicomObject, element: u16, value: Option<f64>) {
    if let Some(v) = value.filter(|v| v.is_finite()) {
        put_private(obj, element, VR::DS, ds(v));
    }
}

/// (1061,0010) creator, and the elements that do not change per frame.
fn put_cest_series(obj: &mut InMemDicomObject, cest: &Cest) {
    put_str(obj, Tag(cest::GROUP, 0x0010), VR::LO, cest::CREATOR);
    put_private(obj, 0x01, VR::LO, clean(&cest.method, 64));
    put_private(obj, 0x02, VR::LO, clean(&cest.saturation_type, 64));
    put_private(obj, 0x03, VR::LO, clean(&cest.pulse_shape, 64));
    put_private_number(obj, 0x04, cest.b1_saturation);
    put_private_number(obj, 0x05, cest.pulse_length);
    put_private_number(obj, 0x06, cest.pulse_number);
    put_private_number(obj, 0x07, cest.interpulse_delay);
    put_private_number(obj, 0x08, cest.saturation_length);
    put_private_number(obj, 0x10, cest.pulse_length2);
    put_private_number(obj, 0x11, cest.duty_cycle);
    put_private_number(obj, 0x13, Some(cest.offsets_hz.len() as f64));
}

/// Elements that depend on the frame: offsets and TR-derived timings.
fn put_cest_frame(
    obj: &mut InMemDicomObject,
    cest: &Cest,
    visu: &Visu,
    frame: usize,
    tr: Option<f64>,
) {
    put_private_number(obj, 0x09, cest.readout_time(tr, visu));
    put_private_number(obj, 0x12, cest.recovery_time(tr));
    let index = cest.offset_index(visu, frame);
    put_private_number(obj, 0x14, cest.offsets_hz.get(index).copied());
    put_private_number(obj, 0x15, cest.offsets_ppm.get(index).copied());
}

fn patient_position(bruker: &str) -> Option<&'static str> {
    Some(match bruker {
        "Head_Supine" => "HFS",
        "Head_Prone" => "HFP",
        "Head_Left" => "HFDL",
        "Head_Right" => "HFDR",
        "Foot_Supine" => "FFS",
        "Foot_Prone" => "FFP",
        "Foot_Left" => "FFDL",
        "Foot_Right" => "FFDR",
        _ => return None,
    })
}

fn scanning_sequence(visu: &Visu) -> &'static str {
    let p = &visu.params;
    let name = p
        .str("VisuAcqSequenceName")
        .unwrap_or_default()
        .to_ascii_uppercase();
    if p.str("VisuAcqIsEpiSequence") == Some("Yes") || name.contains("EPI") {
        return "EP";
    }
    let inversion = visu
        .params
        .f64("VisuAcqInversionTime")
        .is_some_and(|t| t > 0.0);
    match p.str("VisuAcqEchoSequenceType") {
        _ if inversion => "IR",
        Some("GradientEcho") => "GR",
        Some("SpinEcho") => "SE",
        _ => "RM",
    }
}

/// ROW/COL from PV6+ `VisuAcqGradEncoding` or PV5 `VisuAcqImagePhaseEncDir`.
fn phase_direction(p: &ParamFile) -> Option<&'static str> {
    if let Some(encoding) = p.strs("VisuAcqGradEncoding") {
        return match encoding.first().map(String::as_str) {
            Some("phase_enc") => Some("ROW"),
            Some("read_enc") => Some("COL"),
            _ => None,
        };
    }
    match p
        .strs("VisuAcqImagePhaseEncDir")?
        .first()
        .map(String::as_str)
    {
        Some("col_dir") => Some("COL"),
        Some("row_dir") => Some("ROW"),
        _ => None,
    }
}
