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

/// The T1 time base through the command line: a synthetic ParaVision
/// RARE-VTR scan (10 ms echo spacing × (8 echoes − ½) = 75 ms echo train)
/// is fitted against its recovery times by default and against its TRs
/// when asked; its DICOM conversion refuses the recovery base without the
/// echo spacing (one line) and takes it with `--echo-spacing`.
#[test]
fn maps_t1_sr_time_base_on_a_paravision_scan_and_its_conversion() {
    use xnatkit_test_support::paravision::RareVtr;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let spec = RareVtr::default();
    let trs = spec.repetition_times.clone();
    let scan = spec.write(&work.path().join("study"), 7, |k, _, row, col| {
        if (4..20).contains(&row) && (4..26).contains(&col) {
            1000.0 * (1.0 - (-(trs[k] - 75.0) / 1000.0).exp())
        } else {
            0.0
        }
    });
    let run = |args: &[&std::ffi::OsStr]| cli(home.path()).args(args).output().unwrap();
    let os = |s: &'static str| std::ffi::OsStr::new(s);

    let out = work.path().join("default");
    let done = run(&[
        os("maps"),
        os("t1-sr"),
        scan.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--json"),
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(report["time_base"], "recovery");
    let recovery: Vec<f64> = trs.iter().map(|t| t - 75.0).collect();
    assert_eq!(report["times"], serde_json::json!(recovery));
    assert_eq!(report["echo_train"]["duration_ms"], 75.0);

    let out = work.path().join("repetition");
    let done = run(&[
        os("maps"),
        os("t1-sr"),
        scan.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--time-base"),
        os("repetition"),
    ]);
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success() && said.contains("time base repetition"),
        "{said}"
    );

    let dicom = work.path().join("dicom");
    let done = run(&[
        os("convert"),
        os("paravision"),
        scan.as_os_str(),
        os("-o"),
        dicom.as_os_str(),
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let series = xnatkit_test_support::files::files_below(&dicom)
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "dcm"))
        .and_then(|f| f.parent().map(std::path::Path::to_path_buf))
        .unwrap();

    let refused = work.path().join("refused");
    let done = run(&[
        os("maps"),
        os("t1-sr"),
        series.as_os_str(),
        os("-o"),
        refused.as_os_str(),
        os("--time-base"),
        os("recovery"),
    ]);
    assert!(!done.status.success());
    let err = String::from_utf8_lossy(&done.stderr);
    // The status line "fitting T1 in ..." comes first; the error is one line.
    let error: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("error:"))
        .collect();
    assert!(
        error.len() == 1
            && error[0].contains("no echo spacing")
            && error[0].contains("--time-base repetition"),
        "{err}"
    );
    assert!(!refused.exists(), "no output on error");

    let out = work.path().join("dicom-recovery");
    let done = run(&[
        os("maps"),
        os("t1-sr"),
        series.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--time-base"),
        os("recovery"),
        os("--echo-spacing"),
        os("10"),
    ]);
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success() && said.contains("time base recovery (TR − 75 ms echo train)"),
        "{said}{}",
        String::from_utf8_lossy(&done.stderr)
    );

    let done = run(&[
        os("maps"),
        os("t2"),
        scan.as_os_str(),
        os("-o"),
        refused.as_os_str(),
        os("--time-base"),
        os("recovery"),
    ]);
    assert!(!done.status.success());
    assert!(
        String::from_utf8_lossy(&done.stderr).contains("apply to `maps t1-sr` only"),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}
