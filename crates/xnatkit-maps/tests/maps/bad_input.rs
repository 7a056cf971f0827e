//! Bad input: a clear typed error naming the file, and no output at all.

use xnatkit_maps::{Error, MapKind, Options, run_map};

use crate::support::{Geometry, phantom, write_classic};

fn series(dir: &std::path::Path, tes: &[f64], axis: &str, zero_first: bool) {
    let g = Geometry::axial(12, 12, 2);
    let t = tes.to_vec();
    let images = phantom(
        &g,
        tes,
        1.0,
        1,
        move |_, _, k| {
            if zero_first && k == 0 {
                0.0
            } else {
                1000.0 * (-t[k] / 50.0).exp()
            }
        },
        axis,
    );
    let mut images = images;
    if zero_first {
        // Noise-free zeros: the whole first image is 0.
        for img in images.iter_mut().filter(|i| i.echo_time == Some(tes[0])) {
            img.pixels.iter_mut().for_each(|p| *p = 0.0);
        }
    }
    let order: Vec<usize> = (0..images.len()).collect();
    write_classic(dir, &g, &images, &order);
}

#[test]
fn missing_echo_times_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Written with repetition times only: no EchoTime.
    series(&dir.path().join("in"), &[10.0, 20.0, 30.0], "tr", false);
    let out = dir.path().join("out");
    let err = run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &out,
    )
    .unwrap_err();
    assert!(matches!(err, Error::MissingTime { .. }), "{err}");
    assert!(err.to_string().contains("IM0000.dcm"), "{err}");
    assert!(err.to_string().contains("EchoTime"), "{err}");
    assert!(!out.exists(), "no output on error");
}

#[test]
fn missing_b_values_and_recovery_times() {
    let dir = tempfile::tempdir().unwrap();
    series(&dir.path().join("in"), &[10.0, 20.0, 30.0], "te", false);
    for kind in [MapKind::Adc, MapKind::T1Sr] {
        let err = run_map(
            &dir.path().join("in"),
            kind,
            Options::default(),
            &dir.path().join("out"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::MissingTime { .. }), "{err}");
    }
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_single_time_point_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    series(&dir.path().join("in"), &[10.0], "te", false);
    let err = run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("out"),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::TooFewTimePoints { found: 1, .. }),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn an_all_zero_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    series(&dir.path().join("in"), &[10.0, 20.0, 30.0], "te", true);
    let err = run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("out"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadPixels { .. }), "{err}");
    assert!(err.to_string().contains(".dcm"), "names a file: {err}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn an_empty_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/notes.txt"), "not DICOM").unwrap();
    let err = run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("out"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoImages { .. }), "{err}");
}

#[test]
fn dropping_the_first_of_two_echoes_leaves_too_few() {
    let dir = tempfile::tempdir().unwrap();
    series(&dir.path().join("in"), &[10.0, 20.0], "te", false);
    let options = Options {
        drop_first_echo: true,
        ..Options::default()
    };
    let err = run_map(
        &dir.path().join("in"),
        MapKind::T2,
        options,
        &dir.path().join("out"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::TooFewTimePoints { .. }), "{err}");
}

#[test]
fn a_paravision_scan_folder_is_converted_then_checked() {
    // The banana EPI has one echo time: the ParaVision path converts the
    // scan and reads its frames, and the map is refused for having one TE.
    let Some(study) = xnatkit_test_support::fixtures::banana() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let err = run_map(
        &study.join("1"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("out"),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::TooFewTimePoints { found: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("banana_pv51/1"), "{err}");
}

#[test]
fn pixels_cut_short_are_found_when_read_and_leave_no_output() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    series(&input, &[10.0, 20.0, 30.0], "te", false);
    // The headers are read first and the pixels only when the run uses
    // them: a file whose pixel data are cut short is found then.
    let cut = input.join("IM0004.dcm");
    let mut object = dicom_object::open_file(&cut).unwrap();
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(vec![500u16; 10].into()),
    ));
    object.write_to_file(&cut).unwrap();
    let out = dir.path().join("out");
    let err = run_map(&input, MapKind::T2, Options::default(), &out).unwrap_err();
    assert!(matches!(err, Error::BadPixels { .. }), "{err}");
    assert!(
        err.to_string().contains("IM0004.dcm"),
        "names the file: {err}"
    );
    assert!(
        err.to_string().contains("pixel data hold 10 values"),
        "{err}"
    );
    assert!(!out.exists(), "no output on error");
}
