//! Header reading on generated instances and on pydicom's real test files,
//! checked against dcmdump.

// Test helpers panic on setup failures like the tests themselves do.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use xnatkit_dicom::testdata::{
    SyntheticEncoding, SyntheticInstance, new_uid, write_synthetic_instance,
};
use xnatkit_dicom::{Error, read_header, read_header_from, read_headers_parallel};

fn synthetic(encoding: SyntheticEncoding) -> SyntheticInstance {
    SyntheticInstance {
        encoding,
        modality: "CT".into(),
        series_number: Some(7),
        instance_number: Some(3),
        patient_name: Some("Doe^John".into()),
        patient_comments: Some("Project:P1 Subject:S1".into()),
        accession_number: Some("ACC42".into()),
        ..SyntheticInstance::new(&new_uid(), &new_uid())
    }
}

#[test]
fn every_encoding_yields_the_same_header() {
    let dir = tempfile::tempdir().unwrap();
    for encoding in [
        SyntheticEncoding::ExplicitLittle,
        SyntheticEncoding::ImplicitLittle,
        SyntheticEncoding::ExplicitBig,
        SyntheticEncoding::BareImplicitLittle,
    ] {
        let instance = synthetic(encoding);
        let path = dir.path().join(format!("{encoding:?}.dcm"));
        let sop = write_synthetic_instance(&path, &instance).unwrap();
        let header = read_header(&path).unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        assert_eq!(header.sop_instance_uid, sop, "{encoding:?}");
        assert_eq!(header.study_instance_uid, instance.study_uid);
        assert_eq!(header.series_instance_uid, instance.series_uid);
        assert_eq!(header.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
        assert_eq!(header.modality.as_deref(), Some("CT"));
        assert_eq!(header.series_number, Some(7));
        assert_eq!(header.instance_number, Some(3));
        assert_eq!(header.patient_name.as_deref(), Some("Doe^John"));
        assert_eq!(header.patient_id.as_deref(), Some("SUBJ001"));
        assert_eq!(
            header.patient_comments.as_deref(),
            Some("Project:P1 Subject:S1")
        );
        assert_eq!(header.accession_number.as_deref(), Some("ACC42"));
        assert_eq!(header.study_date.as_deref(), Some("20240131"));
        assert_eq!(header.station_name.as_deref(), Some("SCANNER1"));
        let expected_ts = match encoding {
            SyntheticEncoding::ExplicitLittle => "1.2.840.10008.1.2.1",
            SyntheticEncoding::ExplicitBig => "1.2.840.10008.1.2.2",
            _ => "1.2.840.10008.1.2",
        };
        assert_eq!(header.transfer_syntax, expected_ts);

        let from_reader = read_header_from(fs::File::open(&path).unwrap(), "entry.dcm").unwrap();
        assert_eq!(from_reader, header);
    }
}

#[test]
fn garbage_empty_and_truncated_files_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    fs::write(&text, "hello, this is not an image at all\n".repeat(20)).unwrap();
    let err = read_header(&text).unwrap_err();
    assert!(matches!(err, Error::NotDicom { .. }), "{err}");
    assert!(
        err.to_string().contains("notes.txt: not a DICOM file"),
        "{err}"
    );
    assert!(err.is_unparsable());

    let empty = dir.path().join("empty.dcm");
    fs::write(&empty, b"").unwrap();
    assert!(matches!(read_header(&empty), Err(Error::NotDicom { .. })));

    let whole = dir.path().join("whole.dcm");
    write_synthetic_instance(&whole, &synthetic(SyntheticEncoding::ExplicitLittle)).unwrap();
    let bytes = fs::read(&whole).unwrap();

    // Cut inside the header.
    let cut_header = dir.path().join("cut_header.dcm");
    fs::write(&cut_header, &bytes[..300]).unwrap();
    let err = read_header(&cut_header).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("cut_header.dcm: truncated at byte"),
        "{err}"
    );

    // Cut inside the pixel data: the header is complete, the declared pixel data is not.
    let cut_pixels = dir.path().join("cut_pixels.dcm");
    fs::write(&cut_pixels, &bytes[..bytes.len() - 10]).unwrap();
    let err = read_header(&cut_pixels).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: truncated at byte {}",
            cut_pixels.display(),
            bytes.len() - 10
        )
    );

    // A DICM file whose meta group is cut.
    let cut_meta = dir.path().join("cut_meta.dcm");
    fs::write(&cut_meta, &bytes[..140]).unwrap();
    assert!(matches!(
        read_header(&cut_meta),
        Err(Error::Truncated { .. })
    ));

    let missing = dir.path().join("missing.dcm");
    assert!(matches!(read_header(&missing), Err(Error::Io { .. })));
}

#[test]
fn instances_without_uids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nostudy.dcm");
    let instance = SyntheticInstance {
        study_uid: String::new(),
        ..synthetic(SyntheticEncoding::ExplicitLittle)
    };
    write_synthetic_instance(&path, &instance).unwrap();
    let err = read_header(&path).unwrap_err();
    assert!(err.to_string().contains("StudyInstanceUID"), "{err}");
}

#[test]
fn parallel_reading_keeps_order_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<PathBuf> = Vec::new();
    for i in 0..25 {
        let path = dir.path().join(format!("{i}.dcm"));
        if i % 5 == 4 {
            let mut f = fs::File::create(&path).unwrap();
            writeln!(f, "garbage {i}").unwrap();
        } else {
            write_synthetic_instance(
                &path,
                &SyntheticInstance {
                    instance_number: Some(i),
                    ..synthetic(SyntheticEncoding::ImplicitLittle)
                },
            )
            .unwrap();
        }
        paths.push(path);
    }
    let results = read_headers_parallel(&paths, 4);
    assert_eq!(results.len(), 25);
    for (i, (path, result)) in results.iter().enumerate() {
        assert_eq!(path, &paths[i]);
        if i % 5 == 4 {
            assert!(matches!(result, Err(Error::NotDicom { .. })));
        } else {
            assert_eq!(result.as_ref().unwrap().instance_number, Some(i as i64));
        }
    }
    assert!(read_headers_parallel(&[], 4).is_empty());
}

/// Every pydicom test file either reads with the values dcmdump shows, or is
/// refused for a stated reason; never a panic.
#[test]
fn pydicom_files_match_dcmdump() {
    let Some(files) = xnatkit_test_support::tools::pydicom_test_files() else {
        return;
    };
    let Some(dcmdump) = xnatkit_test_support::tools::dcmtk_tool("dcmdump") else {
        return;
    };
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    entries.sort();
    for path in entries {
        let header = match read_header(&path) {
            Ok(header) => header,
            Err(err) => {
                assert!(err.file_name().is_some(), "{err}");
                eprintln!("refused: {err}");
                continue;
            }
        };
        let dumped = xnatkit_test_support::tools::dcmdump_values(&dcmdump, &path);
        for (tag, ours) in [
            ("0008,0018", Some(header.sop_instance_uid.clone())),
            ("0020,000d", Some(header.study_instance_uid.clone())),
            ("0020,000e", Some(header.series_instance_uid.clone())),
            ("0008,0060", header.modality.clone()),
            ("0010,0010", header.patient_name.clone()),
            ("0008,0020", header.study_date.clone()),
        ] {
            let Some(theirs) = dumped.get(tag) else {
                continue;
            };
            // Old `YYYY.MM.DD` dates are normalised by the reader.
            let theirs = if tag == "0008,0020" {
                theirs.trim().replace('.', "")
            } else {
                theirs.trim().to_owned()
            };
            // dcmdump shows elements with VR UN as hex bytes; compare their text.
            let theirs = unhex(&theirs).unwrap_or(theirs);
            if theirs.is_empty() {
                continue;
            }
            assert_eq!(
                ours.as_deref(),
                Some(theirs.as_str()),
                "{} {tag}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 40, "only {checked} pydicom files could be read");

    // Specific files that exercise the reader's paths.
    let expect_ok = [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "JPEG2000.dcm",
        "image_dfl.dcm",
        "ExplVR_BigEndNoMeta.dcm",
        "ExplVR_LitEndNoMeta.dcm",
    ];
    for name in expect_ok {
        read_header(&files.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let ct = read_header(&files.join("CT_small.dcm")).unwrap();
    assert_eq!(ct.series_number, Some(1));
    assert_eq!(ct.manufacturer.as_deref(), Some("GE MEDICAL SYSTEMS"));
    // dcmdump cannot read this one either: a stray byte before the first tag.
    assert!(matches!(
        read_header(&files.join("no_meta.dcm")),
        Err(Error::NotDicom { .. })
    ));
    let err = read_header(&files.join("MR_truncated.dcm")).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

/// `31\\2e\\39` → `1.9`, for values dcmdump prints as bytes.
fn unhex(value: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = value
        .split('\\')
        .map(|part| {
            (part.len() == 2)
                .then(|| u8::from_str_radix(part, 16).ok())
                .flatten()
        })
        .collect();
    let bytes = bytes.filter(|b| b.len() > 1)?;
    Some(
        String::from_utf8_lossy(&bytes)
            .trim_end_matches(['\0', ' '])
            .to_owned(),
    )
}
