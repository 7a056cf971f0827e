//! Test helpers: synthetic DICOM trees (xnatkit-dicom's generator), so every
//! test builds its own data.

use std::path::Path;

use xnatkit_test_support::dicom::{SyntheticInstance, write_synthetic_instance};

pub mod server;

/// What one synthetic instance says about itself.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    pub patient: &'a str,
    pub study_date: &'a str,
    pub modality: &'a str,
    pub series_number: i32,
    pub instance_number: i32,
}

/// Deterministic UID from identifying values, so instances of one series
/// share their study and series UIDs.
fn uid(parts: &[&str]) -> String {
    let mut digits = String::from("1.2.826.0.1.3680043.9.7");
    for p in parts {
        let n: u64 = p
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % 1_000_000_000;
        digits.push_str(&format!(".{n}"));
    }
    digits
}

/// Writes one small instance at `path` (xnatkit-dicom's generator), creating folders.
pub fn write_instance(path: &Path, i: &Instance) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let series = i.series_number.to_string();
    let instance = SyntheticInstance {
        modality: i.modality.to_owned(),
        series_number: Some(i64::from(i.series_number)),
        instance_number: Some(i64::from(i.instance_number)),
        patient_name: Some(i.patient.to_owned()),
        patient_id: Some(i.patient.to_owned()),
        study_date: Some(i.study_date.to_owned()),
        sop_instance_uid: uid(&[
            i.patient,
            i.study_date,
            i.modality,
            &series,
            &i.instance_number.to_string(),
        ]),
        ..SyntheticInstance::new(
            &uid(&[i.patient, i.study_date]),
            &uid(&[i.patient, i.study_date, i.modality, &series]),
        )
    };
    write_synthetic_instance(path, &instance).unwrap();
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
