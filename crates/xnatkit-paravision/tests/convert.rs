//! End-to-end conversions: the real PV5.1 banana study and synthetic PV6 and
//! PV360 studies, checked against an independent decode of the same 2dseq.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};

use common::{Image, Pv, Synth, Word, all_files, series_files};
use dicom_core::Tag;
use dicom_dictionary_std::tags;

/// The real PV5.1 study: env `XNATKIT_PARAVISION_BANANA`, else the project's
/// shared data folder beside the work tree (`../shared/data/paravision/banana_pv51`).
fn banana() -> Option<PathBuf> {
    let path = std::env::var_os("XNATKIT_PARAVISION_BANANA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/paravision/banana_pv51")
        });
    if path.is_dir() {
        Some(path)
    } else if std::env::var_os("CI").is_some() {
        panic!("banana study not found at {}", path.display());
    } else {
        // The skip must show in the test output, not only in a log.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED: set XNATKIT_PARAVISION_BANANA to the banana_pv51 study");
        }
        None
    }
}

fn convert(input: &Path, out: &Path) -> xnatkit_paravision::Report {
    xnatkit_paravision::convert(input, Some(out), |_| {}).unwrap()
}

#[test]
fn banana_pv51_real_values_and_geometry_match_an_independent_decode() {
    let Some(study) = banana() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let report = convert(&study, tmp.path());
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.written.len(), 3);
    let slope = 11.027_018_871_867_7;
    let z = [-4.0, -2.0, 0.0, 2.0, 4.0];
    // First two rows of each scan's VisuCoreOrientation (same for all slices).
    let orientations = [
        ("1", [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        ("2", [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]),
        ("3", [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]),
    ];
    for (scan, orientation) in orientations {
        let raw = std::fs::read(study.join(scan).join("pdata/1/2dseq")).unwrap();
        let stored: Vec<i16> = raw
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        let files = series_files(&tmp.path().join(scan).join("1"));
        assert_eq!(files.len(), 5);
        for (slice, file) in files.iter().enumerate() {
            let image = Image::open(file);
            assert_eq!(image.number(tags::ROWS), 64.0);
            assert_eq!(image.text(tags::SAMPLES_PER_PIXEL), "1");
            assert_eq!(image.number(tags::COLUMNS), 80.0);
            assert_eq!(image.numbers(tags::PIXEL_SPACING), vec![0.6875, 0.55]);
            assert_eq!(
                image.numbers(tags::IMAGE_POSITION_PATIENT),
                vec![-22.0, -21.2, z[slice]]
            );
            assert_eq!(image.numbers(tags::IMAGE_ORIENTATION_PATIENT), orientation);
            assert_eq!(image.number(tags::SLICE_THICKNESS), 1.5);
            assert_eq!(image.number(tags::ECHO_TIME), 16.5);
            assert_eq!(image.number(tags::REPETITION_TIME), 2000.0);
            assert_eq!(image.text(tags::PATIENT_ID), "APMFruits_20111130");
            assert_eq!(image.text(tags::STUDY_DATE), "20111130");
            assert_eq!(
                image.text(tags::STUDY_INSTANCE_UID),
                "2.16.756.5.5.100.279771525.31101.1322666256.56"
            );
            let expected = &stored[slice * 80 * 64..(slice + 1) * 80 * 64];
            for (got, want) in image.real_values().iter().zip(expected) {
                let want = f64::from(*want) * slope;
                assert!((got - want).abs() <= want.abs() * 1e-12, "{got} vs {want}");
            }
        }
    }
    // One frame of reference for the whole study.
    let fors: std::collections::BTreeSet<String> = all_files(tmp.path())
        .iter()
        .map(|f| Image::open(f).text(tags::FRAME_OF_REFERENCE_UID))
        .collect();
    assert_eq!(fors.len(), 1);
}

#[test]
fn converting_twice_gives_identical_files() {
    let Some(study) = banana() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("a");
    let second = tmp.path().join("b");
    convert(&study, &first);
    convert(&study, &second);
    // A rerun into the same folder replaces the series in place.
    convert(&study, &second);
    let a = all_files(&first);
    let b = all_files(&second);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
    }
}

#[test]
fn a_single_scan_folder_converts_and_default_output_sits_beside_the_input() {
    let Some(study) = banana() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("study").join("2");
    copy_dir(&study.join("2"), &scan);
    let report = xnatkit_paravision::convert(&scan, None, |_| {}).unwrap();
    assert_eq!(report.written.len(), 1);
    assert_eq!(report.out_dir, tmp.path().join("study").join("2_dicom"));
    assert_eq!(series_files(&report.written[0].dir).len(), 5);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// Check one synthetic series against the test's own model of it.
fn check_synthetic(out: &Path, expno: u32, procno: u32, synth: &Synth) {
    let dir = out.join(expno.to_string()).join(procno.to_string());
    let files = series_files(&dir);
    let depth = synth.depth.0;
    assert_eq!(
        files.len(),
        synth.frame_count() * depth,
        "{}",
        dir.display()
    );
    for (index, file) in files.iter().enumerate() {
        let (frame, z) = (index / depth, index % depth);
        let image = Image::open(file);
        assert_eq!(image.number(tags::ROWS) as usize, synth.size[1]);
        assert_eq!(image.number(tags::COLUMNS) as usize, synth.size[0]);
        let spacing = image.numbers(tags::PIXEL_SPACING);
        assert!((spacing[0] - synth.extent[1] / synth.size[1] as f64).abs() < 1e-12);
        assert!((spacing[1] - synth.extent[0] / synth.size[0] as f64).abs() < 1e-12);
        let slice = synth.index_of("FG_SLICE", frame);
        let ipp = image.numbers(tags::IMAGE_POSITION_PATIENT);
        // Plane z of a 3-D frame lies z steps along the normal (third orientation row).
        let step = if depth > 1 {
            synth.depth.1 / depth as f64
        } else {
            0.0
        };
        let normal = &synth.orientation[6..9];
        for (axis, got) in ipp.iter().enumerate() {
            let want = synth.position(slice)[axis] + step * z as f64 * normal[axis];
            assert!(
                (got - want).abs() < 1e-9,
                "frame {frame} plane {z}: {ipp:?}"
            );
        }
        if depth > 1 {
            assert_eq!(image.number(tags::SLICE_THICKNESS), step);
            assert_eq!(image.text(tags::MR_ACQUISITION_TYPE), "3D");
        }
        let iop = image.numbers(tags::IMAGE_ORIENTATION_PATIENT);
        for (got, want) in iop.iter().zip(&synth.orientation[..6]) {
            assert!((got - want).abs() < 1e-12);
        }
        let echo = synth.index_of("FG_ECHO", frame);
        assert_eq!(image.number(tags::ECHO_TIME), synth.echo_times[echo]);
        // Real values: exact for 16-bit, within half a stored step otherwise.
        let quantum = image.number(tags::RESCALE_SLOPE);
        let tolerance = if synth.word == Word::I16 {
            1e-9
        } else {
            quantum / 2.0 + 1e-6
        };
        let reals = image.real_values();
        for y in 0..synth.size[1] {
            for x in 0..synth.size[0] {
                let want = synth.slope(frame) * synth.stored(frame, z, x, y) + synth.offset(frame);
                let got = reals[y * synth.size[0] + x];
                assert!(
                    (got - want).abs() <= tolerance.max(want.abs() * 1e-12),
                    "scan {expno} frame {frame} ({x},{y}): {got} vs {want}"
                );
            }
        }
        if let Some(cest) = &synth.cest {
            let offset = cest.offsets[synth.index_of("FG_CYCLE", frame)];
            let (hz, ppm) = match synth.version {
                Pv::V6 => (offset, offset / common::FREQUENCY_MHZ),
                Pv::V360 => (offset * common::FREQUENCY_MHZ, offset),
            };
            assert_eq!(
                image.text(Tag(0x1061, 0x0010)),
                xnatkit_paravision::cest::CREATOR
            );
            assert!((image.number(Tag(0x1061, 0x1014)) - hz).abs() < 1e-6);
            assert!((image.number(Tag(0x1061, 0x1015)) - ppm).abs() < 1e-9);
            assert_eq!(
                image.number(Tag(0x1061, 0x1013)) as usize,
                cest.offsets.len()
            );
        } else {
            assert!(image.text(Tag(0x1061, 0x0010)).is_empty());
        }
    }
}

#[test]
fn synthetic_pv6_study_msme_cest_int32_and_float_map() {
    let tmp = tempfile::tempdir().unwrap();
    let (study, scans) = common::pv6_study(tmp.path());
    let out = tmp.path().join("out");
    let report = convert(&study, &out);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.written.len(), 3);
    for (expno, procno, synth) in &scans {
        check_synthetic(&out, *expno, *procno, synth);
    }
    let first = Image::open(&series_files(&out.join("1/1"))[0]);
    assert_eq!(first.text(tags::PATIENT_SEX), "F");
    assert_eq!(first.text(tags::PATIENT_POSITION), "HFP");
    assert_eq!(first.text(tags::ANATOMICAL_ORIENTATION_TYPE), "QUADRUPED");
    assert_eq!(first.text(tags::STUDY_DATE), "20150304");
    assert_eq!(first.text(tags::TIMEZONE_OFFSET_FROM_UTC), "+0100");
    assert_eq!(first.text(tags::IMAGED_NUCLEUS), "1H");
    assert_eq!(first.text(tags::IMAGE_TYPE), "ORIGINAL\\PRIMARY\\OTHER");
    let echo_numbers: Vec<String> = series_files(&out.join("1/1"))
        .iter()
        .map(|f| Image::open(f).text(tags::ECHO_NUMBERS))
        .collect();
    assert_eq!(echo_numbers, ["1", "2", "3", "1", "2", "3"]);
    let map = Image::open(&series_files(&out.join("1/2"))[0]);
    assert_eq!(map.text(tags::IMAGE_TYPE), "DERIVED\\SECONDARY\\OTHER");
    let cest = Image::open(&series_files(&out.join("2/1"))[0]);
    assert_eq!(cest.text(Tag(0x1061, 0x1002)), "CEST");
    assert_eq!(cest.text(Tag(0x1061, 0x1003)), "gauss.exc");
    assert_eq!(cest.number(Tag(0x1061, 0x1005)), 3000.0);
    assert_eq!(cest.number(Tag(0x1061, 0x1012)), 2000.0);
}

#[test]
fn synthetic_pv360_study_cest_on_inner_cycle_group_big_endian_and_float() {
    let tmp = tempfile::tempdir().unwrap();
    let (study, scans) = common::pv360_study(tmp.path());
    let out = tmp.path().join("out");
    let report = convert(&study, &out);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for (expno, procno, synth) in &scans {
        check_synthetic(&out, *expno, *procno, synth);
    }
    let first = Image::open(&series_files(&out.join("3/1"))[0]);
    assert_eq!(first.text(tags::MAGNETIC_FIELD_STRENGTH), "9.4039");
    assert_eq!(first.text(tags::STUDY_DATE), "20240725");
    assert_eq!(first.text(tags::STUDY_TIME), "090212.259");
    assert_eq!(first.text(Tag(0x1061, 0x1002)), "MTC");
    assert_eq!(first.number(Tag(0x1061, 0x1004)), 3.0);
    assert_eq!(first.number(Tag(0x1061, 0x1008)), 3000.0);
}

#[test]
fn broken_reconstructions_are_reported_and_leave_nothing_while_others_convert() {
    let tmp = tempfile::tempdir().unwrap();
    let (study, scans) = common::pv6_study(tmp.path());
    // More scans, each broken in one way.
    for expno in [5, 6, 7, 8] {
        scans[0].2.write(&study, expno, 1);
    }
    let recon = |expno: u32| study.join(expno.to_string()).join("pdata/1");
    let twodseq = recon(5).join("2dseq");
    let bytes = std::fs::read(&twodseq).unwrap();
    std::fs::write(&twodseq, &bytes[..bytes.len() - 10]).unwrap();
    std::fs::remove_file(recon(6).join("visu_pars")).unwrap();
    std::fs::write(
        recon(7).join("visu_pars"),
        b"\x00\x01garbage\xff\xfe not jcamp",
    )
    .unwrap();
    // Scan 8 was acquired (it has raw data) but its 2dseq is gone: a failure.
    std::fs::write(study.join("8/fid"), [0u8; 16]).unwrap();
    std::fs::remove_file(recon(8).join("2dseq")).unwrap();
    // Scan 9 was set up but never run: visu_pars, no 2dseq, no fid. Scan 10
    // has only its parameter files. Both are skipped, not failures.
    scans[0].2.write(&study, 9, 1);
    std::fs::remove_file(recon(9).join("2dseq")).unwrap();
    std::fs::create_dir_all(study.join("10")).unwrap();
    std::fs::copy(study.join("1/acqp"), study.join("10/acqp")).unwrap();
    // A garbage method file breaks the CEST scan.
    std::fs::write(study.join("2/method"), "##$Method=( 3 )\n1 2\n").unwrap();

    let out = tmp.path().join("out");
    let mut messages = Vec::new();
    let report = xnatkit_paravision::convert(&study, Some(&out), |outcome| {
        if let Err(failure) = outcome {
            messages.push(failure.to_string());
        }
    })
    .unwrap();
    assert_eq!(report.written.len(), 2, "{messages:?}");
    assert_eq!(report.failures.len(), 5, "{messages:?}");
    let expect = [
        ("scan 2 ", "2/method"),
        ("scan 5 ", "5/pdata/1/2dseq"),
        ("scan 6 ", "6/pdata/1/visu_pars is missing"),
        ("scan 7 ", "7/pdata/1/visu_pars"),
        ("scan 8 ", "8/pdata/1/2dseq is missing"),
    ];
    for (scan, file) in expect {
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with(scan) && m.contains(file)),
            "no message for {scan} naming {file}: {messages:?}"
        );
    }
    assert!(messages.iter().any(|m| m.contains("truncated")));
    let skipped: Vec<String> = report.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].starts_with("scan 9 reconstruction 1: skipped: never acquired"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].starts_with("scan 10: skipped: never acquired"),
        "{skipped:?}"
    );
    for expno in [2, 5, 6, 7, 8, 9, 10] {
        let broken = out.join(expno.to_string());
        assert!(!broken.exists(), "output left in {}", broken.display());
    }
    assert_eq!(series_files(&out.join("1/1")).len(), 6);
}

#[test]
fn a_study_never_acquired_is_all_skips_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    let synth = common::small_scan("never_run");
    synth.write(&study, 1, 1);
    std::fs::remove_file(study.join("1/fid")).unwrap();
    std::fs::remove_file(study.join("1/pdata/1/2dseq")).unwrap();
    let out = tmp.path().join("out");
    let report = xnatkit_paravision::convert(&study, Some(&out), |_| {}).unwrap();
    assert!(report.written.is_empty() && report.failures.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert!(!out.exists());
}

#[test]
fn not_a_study_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = xnatkit_paravision::convert(tmp.path(), None, |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("no ParaVision reconstructions"),
        "{err}"
    );
    let err = xnatkit_paravision::convert(&tmp.path().join("nope"), None, |_| {}).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

/// Issue 11 on the real PV5.1 study: per-package NumberOfSlices and the 2-D
/// slice distance (PV5.1 has no slice-package parameters: from positions),
/// one series per scan, and the TR falling back to the method file when
/// visu_pars has none (as on FAIR_RARE).
#[test]
fn banana_pv51_slice_counts_spacing_and_tr_fallback() {
    let Some(study) = banana() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("banana");
    copy_dir(&study, &copy);
    let visu_path = copy.join("2/pdata/1/visu_pars");
    let text = std::fs::read_to_string(&visu_path).unwrap();
    let mut kept = Vec::new();
    let mut dropping = false;
    for line in text.lines() {
        if line.starts_with("##") || line.starts_with("$$") {
            dropping = line.starts_with("##$VisuAcqRepetitionTime=");
        }
        if !dropping {
            kept.push(line);
        }
    }
    assert_eq!(kept.len() + 2, text.lines().count(), "record and its value");
    std::fs::write(&visu_path, kept.join("\n") + "\n").unwrap();

    let out = tmp.path().join("out");
    let report = convert(&copy, &out);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    for scan in ["1", "2", "3"] {
        let images: Vec<Image> = series_files(&out.join(scan).join("1"))
            .iter()
            .map(|f| Image::open(f))
            .collect();
        let series: std::collections::BTreeSet<String> = images
            .iter()
            .map(|i| i.text(tags::SERIES_INSTANCE_UID))
            .collect();
        assert_eq!(series.len(), 1);
        for image in &images {
            assert_eq!(image.number(tags::NUMBER_OF_SLICES), 5.0);
            assert_eq!(image.number(tags::IMAGES_IN_ACQUISITION), 5.0);
            // Scans 2 and 3 of this real study step their slices along z,
            // which lies in their image plane: no distance along the normal
            // to report, so none is written.
            let spacing = image.numbers(tags::SPACING_BETWEEN_SLICES);
            if scan == "1" {
                assert_eq!(spacing, vec![2.0]);
            } else {
                assert!(spacing.is_empty(), "scan {scan}: {spacing:?}");
            }
            // Scan 2 lost its VisuAcqRepetitionTime: method PVM_RepetitionTime.
            assert_eq!(image.number(tags::REPETITION_TIME), 2000.0);
        }
    }
}
