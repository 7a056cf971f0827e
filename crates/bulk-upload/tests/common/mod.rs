//! Test helpers: synthetic DICOM trees written with dicom-object, so every
//! test builds its own data.
#![allow(dead_code)]

use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// What one synthetic instance says about itself.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    pub patient: &'a str,
    pub study_date: &'a str,
    pub modality: &'a str,
    pub series_number: i32,
    pub instance_number: i32,
}

fn uid(parts: &[&str]) -> String {
    // Deterministic UIDs from the identifying values (digits only).
    let mut digits = String::from("1.2.826.0.1.3680043.9.7");
    for p in parts {
        let n: u64 = p.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)) % 1_000_000_000;
        digits.push_str(&format!(".{n}"));
    }
    digits
}

/// Writes one small instance (8×8 16-bit pixels) at `path`, creating folders.
pub fn write_instance(path: &Path, i: &Instance) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let sop_class = match i.modality {
        "CT" => uids::CT_IMAGE_STORAGE,
        "PT" => uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
        "US" => uids::ULTRASOUND_IMAGE_STORAGE,
        _ => uids::MR_IMAGE_STORAGE,
    };
    let series = i.series_number.to_string();
    let instance = i.instance_number.to_string();
    let study_uid = uid(&[i.patient, i.study_date]);
    let series_uid = uid(&[i.patient, i.study_date, i.modality, &series]);
    let sop_uid = uid(&[i.patient, i.study_date, i.modality, &series, &instance]);
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
    put(tags::SOP_CLASS_UID, VR::UI, sop_class.into());
    put(tags::SOP_INSTANCE_UID, VR::UI, sop_uid.as_str().into());
    put(tags::STUDY_DATE, VR::DA, i.study_date.into());
    put(tags::MODALITY, VR::CS, i.modality.into());
    put(tags::MANUFACTURER, VR::LO, "xnatkit-test".into());
    put(tags::STUDY_DESCRIPTION, VR::LO, "synthetic".into());
    put(tags::PATIENT_NAME, VR::PN, i.patient.into());
    put(tags::PATIENT_ID, VR::LO, i.patient.into());
    put(tags::STUDY_INSTANCE_UID, VR::UI, study_uid.as_str().into());
    put(tags::SERIES_INSTANCE_UID, VR::UI, series_uid.as_str().into());
    put(tags::SERIES_NUMBER, VR::IS, series.as_str().into());
    put(tags::INSTANCE_NUMBER, VR::IS, instance.as_str().into());
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2".into());
    put(tags::ROWS, VR::US, PrimitiveValue::from(8u16));
    put(tags::COLUMNS, VR::US, PrimitiveValue::from(8u16));
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
    put(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16));
    put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16));
    put(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16));
    let pixels: Vec<u16> = (0..64u16).map(|p| p.wrapping_mul(i.instance_number as u16 + 1)).collect();
    put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into()));
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(sop_class)
                .media_storage_sop_instance_uid(sop_uid.as_str()),
        )
        .unwrap();
    file.write_to_file(path).unwrap();
}

/// The seed's directory example (xnatuploader README): two patients, three
/// visits, four scan folders.
pub fn write_seed_tree(root: &Path) {
    let layout: &[(&str, &str, &str, &str, i32, i32)] = &[
        ("Doe^John-0001", "20200312", "Chest CT", "CT", 2, 3),
        ("Roe^Jane-0342", "20190115", "Head CT", "CT", 3, 4),
        ("Roe^Jane-0342", "20200623", "Head CT", "CT", 3, 3),
        ("Roe^Jane-0342", "20200623", "Neck CT", "CT", 4, 4),
    ];
    for (patient, date, dir, modality, series, count) in layout {
        for n in 0..*count {
            let path = root
                .join(patient)
                .join(date)
                .join(dir)
                .join(format!("scan{n:04}.dcm"));
            write_instance(
                &path,
                &Instance {
                    patient,
                    study_date: date,
                    modality,
                    series_number: *series,
                    instance_number: n + 1,
                },
            );
        }
    }
}
