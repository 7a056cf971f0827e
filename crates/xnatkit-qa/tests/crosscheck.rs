//! xnatkit-qa against an independent numpy/scipy implementation
//! (`qa_reference.py`) on real data:
//! - the ParaVision banana study in `../shared/data/paravision` (three
//!   repeats of one EPI of a real banana), converted by brkraw;
//! - nibabel's real fMRI test series `functional.nii` (20 frames) and
//!   `example4d.nii.gz` (2 frames) for tSNR and drift;
//! - pydicom's `MR_small.dcm` (a real head crop, one slice), by dcm2niix;
//! - the GE diffusion series in `../shared/data/dwi-ge`, by dcm2niix: its
//!   pixel data are the same stripes in every volume (the data set tests
//!   headers), so it checks the 4-D path on identical frames (tSNR 0).

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test's failure

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use xnatkit_qa::{Volume, assess};
use xnatkit_test_support::ci::{skip, tool};
use xnatkit_test_support::fixtures::{banana, shared_data};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The peers' Python (with nibabel and scipy), as scripts/test.sh sets it.
fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("XNATKIT_PEERS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-peers/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import nibabel, scipy, pydicom"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(candidate)
    } else {
        skip(
            "a Python with nibabel, scipy and pydicom (XNATKIT_PEERS_PYTHON, scripts/setup-peers.sh)",
        )
    }
}

fn dcm2niix_available() -> bool {
    tool("dcm2niix", "dcm2niix").is_some()
}

/// Converts the DICOM files in `dicom_dir` with dcm2niix; the one image made.
fn convert(dicom_dir: &Path, out: &Path) -> PathBuf {
    let status = Command::new("dcm2niix")
        .args(["-z", "y", "-b", "n", "-f", "image", "-o"])
        .arg(out)
        .arg(dicom_dir)
        .output()
        .expect("run dcm2niix");
    assert!(
        status.status.success(),
        "dcm2niix: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let images: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".nii.gz"))
        .collect();
    assert_eq!(images.len(), 1, "dcm2niix made {images:?}");
    images.into_iter().next().unwrap()
}

fn reference(python: &Path, image: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qa_reference.py");
    let out = Command::new(python)
        .arg(script)
        .arg(image)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "reference: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}

fn close(ours: Option<f64>, theirs: Option<f64>, name: &str) {
    match (ours, theirs) {
        (Some(a), Some(b)) => {
            // Relative agreement, or absolute for values that are zero up to
            // rounding (a drift of 1e-15 %).
            let scale = a.abs().max(b.abs());
            assert!(
                (a - b).abs() <= 1e-6 * scale || (a - b).abs() < 1e-9,
                "{name}: ours {a}, reference {b}"
            );
        }
        (None, None) => {}
        other => panic!("{name}: ours/reference {other:?}"),
    }
}

fn compare(image: &Path, python: &Path) -> xnatkit_qa::QaReport {
    let volume = Volume::read(image).expect("read NIfTI");
    let (report, _mask, _) = assess(&volume).expect("assess");
    let theirs = reference(python, image);
    assert_eq!(
        report.mask_voxels as u64,
        theirs["mask_voxels"].as_u64().unwrap(),
        "head masks differ"
    );
    let get = |k: &str| theirs.get(k).and_then(Value::as_f64);
    for (name, ours) in report.rows() {
        if name == "mask_voxels" {
            continue;
        }
        close(ours, get(name), name);
    }
    report
}

#[test]
fn four_d_diffusion_series_matches_numpy() {
    let Some(python) = python() else {
        return;
    };
    if !dcm2niix_available() {
        return;
    }
    let data = shared_data().join("dwi-ge/01_Ax_DWI_TENSOR_R2");
    if !data.is_dir() {
        skip::<()>(&format!("the GE DWI series is not at {}", data.display()));
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let image = convert(&data, out.path());
    let report = compare(&image, &python);
    assert_eq!(
        report.dims[3], 7,
        "b=0 and six directions: {:?}",
        report.dims
    );
    assert_eq!(
        report.tsnr_mean,
        Some(0.0),
        "identical frames have no temporal SNR"
    );
}

#[test]
fn banana_epi_repeats_match_numpy() {
    let Some(python) = python() else {
        return;
    };
    let Some(study) = banana() else {
        return;
    };
    let brkraw = python.with_file_name("brkraw");
    let out = tempfile::tempdir().unwrap();
    let converted = Command::new(&brkraw)
        .arg("convert")
        .arg(&study)
        .arg("-o")
        .arg(out.path())
        .output()
        .expect("run brkraw");
    assert!(
        converted.status.success(),
        "brkraw: {}",
        String::from_utf8_lossy(&converted.stderr)
    );
    let mut images: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".nii.gz"))
        .collect();
    images.sort();
    assert_eq!(images.len(), 3, "{images:?}");
    for image in &images {
        let report = compare(image, &python);
        assert!(report.mask_voxels > 1000, "the banana is found: {report:?}");
        assert!(report.fber.unwrap() > 5.0, "{report:?}");
    }
    // The three repeats hold the same pixel data: nothing temporal here.
}

#[test]
fn single_mr_slice_matches_numpy() {
    let Some(python) = python() else {
        return;
    };
    if !dcm2niix_available() {
        return;
    }
    let located = Command::new(&python)
        .args([
            "-c",
            "from pydicom.data import get_testdata_file; print(get_testdata_file('MR_small.dcm'))",
        ])
        .output()
        .unwrap();
    let source = PathBuf::from(String::from_utf8_lossy(&located.stdout).trim());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&source, dir.path().join("MR_small.dcm")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let image = convert(dir.path(), out.path());
    let report = compare(&image, &python);
    assert_eq!(report.dims[2..], [1, 1]);
    assert!(report.tsnr_mean.is_none());
}

#[test]
fn outputs_are_written_whole() {
    // A synthetic 4-D phantom: a bright ball drifting up 1 % over 10 frames.
    let (nx, ny, nz, nt) = (24, 24, 12, 10);
    let mut data = Vec::with_capacity(nx * ny * nz * nt);
    for t in 0..nt {
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let r2 = (x as f64 - 12.0).powi(2)
                        + (y as f64 - 12.0).powi(2)
                        + ((z as f64 - 6.0) * 2.0).powi(2);
                    let base = if r2 < 64.0 { 1000.0 } else { 10.0 };
                    let noise = ((x * 7 + y * 13 + z * 17 + t * 29) % 11) as f64;
                    data.push(base * (1.0 + 0.001 * t as f64) + noise);
                }
            }
        }
    }
    let volume = Volume::from_parts([nx, ny, nz, nt], [1.0, 1.0, 2.0], data);
    let (report, mask, mean) = assess(&volume).unwrap();
    let drift = report.drift_percent.unwrap();
    assert!((drift - 0.9).abs() < 0.1, "drift {drift}");
    let png = xnatkit_qa::montage_png(&mean, &mask).unwrap();
    let out = tempfile::tempdir().unwrap();
    xnatkit_qa::write_outputs(out.path(), &report, &png).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["montage.png", "qa.csv", "qa.json"]);
    let csv = std::fs::read_to_string(out.path().join("qa.csv")).unwrap();
    assert!(csv.starts_with("metric,value\nmask_voxels,"), "{csv}");
    assert_eq!(
        &std::fs::read(out.path().join("montage.png")).unwrap()[1..4],
        b"PNG"
    );
}

/// A data file nibabel ships with its tests.
fn nibabel_test_file(python: &Path, name: &str) -> PathBuf {
    let out = Command::new(python)
        .args([
            "-c",
            "import os, sys, nibabel; print(os.path.join(os.path.dirname(nibabel.__file__), 'tests', 'data', sys.argv[1]))",
            name,
        ])
        .output()
        .unwrap();
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.is_file(), "nibabel's {name} at {}", path.display());
    path
}

#[test]
fn real_fmri_series_match_numpy() {
    let Some(python) = python() else {
        return;
    };
    let functional = compare(&nibabel_test_file(&python, "functional.nii"), &python);
    assert_eq!(functional.dims[3], 20);
    let tsnr = functional.tsnr_mean.unwrap();
    assert!(
        tsnr > 10.0,
        "an fMRI series has a temporal SNR well above 10: {functional:?}"
    );
    assert!(
        functional.drift_percent.unwrap().abs() < 5.0,
        "{functional:?}"
    );

    let two_frames = compare(&nibabel_test_file(&python, "example4d.nii.gz"), &python);
    assert_eq!(two_frames.dims[3], 2);
    assert!(two_frames.tsnr_mean.is_some());
    assert_eq!(two_frames.drift_percent, None, "no line through two frames");
}
