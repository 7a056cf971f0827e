//! `xnatkit maps` end to end on real data, no server: the ADC map of the
//! GE DWI (`../shared/data/dwi-ge`), `mask-average` on rt-utils' real CT
//! with its RTSTRUCT, and a refused input (one line, non-zero exit, no
//! output folder).

use std::path::PathBuf;

use xnatkit_test_support::ci::skip;
use xnatkit_test_support::fixtures::shared_data;

use crate::support::cli;

fn data(rel: &str) -> Option<PathBuf> {
    let path = shared_data().join(rel);
    if path.exists() {
        Some(path)
    } else {
        skip(&format!("the real data set is not at {}", path.display()))
    }
}

#[test]
fn maps_adc_then_mask_average_and_a_refused_input() {
    let Some(dwi) = data("dwi-ge/01_Ax_DWI_TENSOR_R2") else {
        return;
    };
    let Some(ct) = data("rtstruct-rtutils/mock_data") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("adc");
    let run = cli(home.path())
        .args(["maps", "adc"])
        .arg(&dwi)
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["map"], "adc");
    assert_eq!(report["times"], serde_json::json!([0.0, 1000.0]));
    for name in [
        "ADC_map.nii.gz",
        "ADC_map.png",
        "ADC_map_dicom/IM0001.dcm",
        "maps.json",
    ] {
        assert!(out.join(name).is_file(), "{name}");
    }

    let stats = work.path().join("stats");
    let run = cli(home.path())
        .args(["maps", "mask-average", "--map"])
        .arg(&ct)
        .arg("--rois")
        .arg(ct.join("rt.dcm"))
        .arg("-o")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("ROI-1"), "{table}");
    let rois: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stats.join("rois.json")).unwrap()).unwrap();
    assert_eq!(rois[0]["voxels"], 1443, "{rois}");
    assert!(stats.join("statistics.txt").is_file());

    // One echo time only: refused with one line naming the folder.
    let refused = work.path().join("t2");
    let run = cli(home.path())
        .args(["maps", "t2"])
        .arg(&dwi)
        .arg("-o")
        .arg(&refused)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("echo time") && err.contains("01_Ax_DWI_TENSOR_R2"),
        "{err}"
    );
    assert!(!refused.exists(), "no output on error");
}
