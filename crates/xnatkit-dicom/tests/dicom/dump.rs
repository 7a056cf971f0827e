//! The DICOM dump compared with dcmdump.

// Test helpers panic on setup failures like the tests themselves do.

use xnatkit_dicom::testdata::{SyntheticInstance, new_uid, write_synthetic_instance};
use xnatkit_dicom::{Error, dicom_dump};

#[test]
fn synthetic_dump_has_xnat_columns_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.dcm");
    let instance = SyntheticInstance {
        patient_name: Some("Doe^John".into()),
        ..SyntheticInstance::new(&new_uid(), &new_uid())
    };
    write_synthetic_instance(&path, &instance).unwrap();

    let all = dicom_dump(&path, &[]).unwrap();
    let name = all.iter().find(|r| r.tag1 == "(0010,0010)").unwrap();
    assert_eq!(name.tag2, "");
    assert_eq!(name.vr, "PN");
    assert_eq!(name.value, "Doe^John");
    assert_eq!(name.desc, "Patient Name");
    assert!(
        all.iter().all(|r| r.tag1 != "(7FE0,0010)"),
        "pixel data must not be dumped"
    );
    assert!(
        all.iter().all(|r| !r.tag1.starts_with("(0002,")),
        "meta only on request"
    );

    let some = dicom_dump(
        &path,
        &[
            "Modality".into(),
            "00100010".into(),
            "(0020,000D)".into(),
            "00020010".into(),
        ],
    )
    .unwrap();
    let tags: Vec<&str> = some.iter().map(|r| r.tag1.as_str()).collect();
    assert_eq!(
        tags,
        vec!["(0002,0010)", "(0008,0060)", "(0010,0010)", "(0020,000D)"]
    );
    assert_eq!(some[0].value, "1.2.840.10008.1.2.1");
    assert_eq!(some[3].value, instance.study_uid);

    let err = dicom_dump(&path, &["NotAKeyword".into()]).unwrap_err();
    assert!(matches!(err, Error::UnknownField { .. }));
    assert!(err.to_string().contains("NotAKeyword"));
}

#[test]
fn dump_values_match_dcmdump() {
    let Some(files) = xnatkit_test_support::tools::pydicom_test_files() else {
        return;
    };
    let Some(dcmdump) = xnatkit_test_support::tools::dcmtk_tool("dcmdump") else {
        return;
    };
    for name in [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "rtplan.dcm",
    ] {
        let path = files.join(name);
        let ours = dicom_dump(&path, &[]).unwrap();
        let theirs = xnatkit_test_support::tools::dcmdump_values(&dcmdump, &path);
        let mut compared = 0;
        for row in ours.iter().filter(|r| r.tag2.is_empty() && r.vr != "SQ") {
            let key = row.tag1[1..10].to_lowercase();
            let Some(expected) = theirs.get(&key) else {
                panic!("{name}: dcmdump does not show {}", row.tag1)
            };
            // Binary and floating-point values are formatted differently by dcmdump.
            if ["OB", "OW", "UN", "FD", "FL", "OF", "SS", "AT"].contains(&row.vr.as_str())
                || expected.starts_with('=')
            {
                continue;
            }
            assert_eq!(
                &row.value,
                expected.trim_end(),
                "{name} {} ({})",
                row.tag1,
                row.desc
            );
            compared += 1;
        }
        assert!(compared > 20, "{name}: only {compared} values compared");
    }

    // Nested elements carry the path below the top-level sequence.
    let rows = dicom_dump(&files.join("rtplan.dcm"), &["300A0010".into()]).unwrap();
    assert_eq!(rows[0].vr, "SQ");
    assert_eq!(rows[0].tag2, "");
    assert!(rows.len() > 1);
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.tag1 == "(300A,0010)" && r.tag2.starts_with('('))
    );
}
