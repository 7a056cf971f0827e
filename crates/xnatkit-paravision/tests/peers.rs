//! Cross-checks with other tools on the same input and our output:
//! dciodvfy (Debian `dicom3tools`), dcm2niix (Debian `dcm2niix`), and pydicom +
//! brkraw 0.5.7 through the Python in env `XNATKIT_PEERS_PYTHON`.
//! A missing tool skips its check loudly, except under `CI`, where it fails.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::all_files;

fn skip_or_fail(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required when CI is set");
    }
    // The skip must show in the test output, not only in a log.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("SKIPPED: {what}");
    }
}

fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        skip_or_fail(&format!("`{name}` not on PATH (Debian package {package})"));
    }
    found
}

fn peers_python() -> Option<PathBuf> {
    match std::env::var_os("XNATKIT_PEERS_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            skip_or_fail("set XNATKIT_PEERS_PYTHON (a Python with pydicom and brkraw==0.5.7)");
            None
        }
    }
}

fn banana() -> Option<PathBuf> {
    let path = std::env::var_os("XNATKIT_PARAVISION_BANANA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/paravision/banana_pv51")
        });
    if path.is_dir() {
        Some(path)
    } else {
        skip_or_fail("set XNATKIT_PARAVISION_BANANA to the banana_pv51 study");
        None
    }
}

/// Convert banana (if available) and both synthetic studies; returns
/// (study, output) pairs.
fn converted(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut studies = Vec::new();
    if let Some(banana) = banana() {
        studies.push(banana);
    }
    studies.push(common::pv6_study(root).0);
    studies.push(common::pv360_study(root).0);
    studies
        .into_iter()
        .enumerate()
        .map(|(i, study)| {
            let out = root.join(format!("out{i}"));
            let report = xnatkit_paravision::convert(&study, Some(&out), |_| {}).unwrap();
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            (study, out)
        })
        .collect()
}

#[test]
fn dciodvfy_finds_no_errors() {
    let Some(dciodvfy) = tool("dciodvfy", "dicom3tools") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (_, out) in converted(tmp.path()) {
        for file in all_files(&out) {
            let output = Command::new(&dciodvfy).arg(&file).output().unwrap();
            let report = String::from_utf8_lossy(&output.stderr).into_owned()
                + &String::from_utf8_lossy(&output.stdout);
            let errors: Vec<&str> = report.lines().filter(|l| l.contains("Error")).collect();
            assert!(
                errors.is_empty(),
                "{}:\n{}",
                file.display(),
                errors.join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked > 40);
}

#[test]
fn dcm2niix_converts_every_series() {
    let Some(dcm2niix) = tool("dcm2niix", "dcm2niix") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (_, out) in converted(tmp.path()) {
        let nifti = tmp.path().join("nifti").join(out.file_name().unwrap());
        std::fs::create_dir_all(&nifti).unwrap();
        let output = Command::new(&dcm2niix)
            .args(["-z", "n", "-f", "%s_%e", "-o"])
            .arg(&nifti)
            .arg(&out)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{log}");
        assert!(!log.contains("Error"), "{log}");
        let series_dirs = all_files(&out)
            .iter()
            .filter_map(|f| f.parent().map(Path::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let volumes = all_files(&nifti)
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "nii"))
            .count();
        assert!(
            volumes >= series_dirs,
            "{volumes} NIfTI files for {series_dirs} series:\n{log}"
        );
    }
}

#[test]
fn pydicom_reads_everything_and_brkraw_agrees_on_data_and_geometry() {
    let Some(python) = peers_python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crosscheck.py");
    let tmp = tempfile::tempdir().unwrap();
    for (study, out) in converted(tmp.path()) {
        let mut args: Vec<String> = vec![script.display().to_string(), out.display().to_string()];
        let study_text = study.display().to_string();
        // brkraw comparisons on 16-bit data (stored as-is): banana and the PV6 MSME.
        let checks: &[(&str, &str, &str)] =
            if study.join("3/pdata/1/2dseq").is_file() && !study.join("subject").exists() {
                &[
                    ("1", "1", "FG_SLICE:5"),
                    ("2", "1", "FG_SLICE:5"),
                    ("3", "1", "FG_SLICE:5"),
                ]
            } else if study.join("2/pdata/1/2dseq").is_file() {
                &[("1", "1", "FG_ECHO:3,FG_SLICE:2")]
            } else {
                &[]
            };
        for (expno, reco, groups) in checks {
            args.extend([
                study_text.clone(),
                (*expno).to_owned(),
                (*reco).to_owned(),
                (*groups).to_owned(),
            ]);
        }
        let output = Command::new(&python).args(&args).output().unwrap();
        let log = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}:\n{log}", study.display());
        assert!(log.contains("OK"), "{log}");
        eprintln!("{log}");
    }
}
