//! Cross-checks against independent Python implementations
//! (`tests/maps_reference.py`, run with the peers' venv) on real data:
//! - the GE DWI in `../shared/data/dwi-ge` (b = 0 and six directions at
//!   b = 1000, GE's private b-value tag; identical volumes, so ADC 0): the
//!   headers read, against a SciPy fit and dipy's tensor mean diffusivity;
//! - dipy's real DWI crop `small_64D` (64 directions) as a DICOM series:
//!   ADC against a SciPy fit of the same definition, and against dipy's
//!   tensor MD;
//! - rt-utils' real CT + RTSTRUCTs (`../shared/data/rtstruct-rtutils`):
//!   masks against rt-utils' own rasterisation (agreement reported as Dice
//!   and voxel differences; the boundary rules differ, docs/maps.md) and
//!   exactly against a numpy implementation of our documented rule;
//! - rt-utils' oblique anisotropic slices with an RTSTRUCT drawn on them,
//!   and pydicom's `rtstruct.dcm` on a grid in its frame of reference,
//!   exactly against the numpy rule.

use std::collections::{BTreeMap, BTreeSet};

/// dipy MD against our ADC on small_64D: measured 1.5 % median relative
/// difference and correlation 0.986 (docs/maps.md), bounded with a margin.
const REL_BOUND: f64 = 0.03;
const CORR_BOUND: f64 = 0.97;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use xnatkit_maps::{MapKind, Options, load_map, rtstruct, run_map, run_mask_average};
use xnatkit_test_support::ci::skip;
use xnatkit_test_support::fixtures::shared_data;

fn python() -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidate = std::env::var_os("XNATKIT_PEERS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv-peers/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import numpy, pydicom, nibabel, dipy, rt_utils"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(candidate)
    } else {
        skip(
            "a Python with numpy, pydicom, nibabel, dipy and rt-utils (XNATKIT_PEERS_PYTHON, scripts/setup-peers.sh)",
        )
    }
}

fn data(rel: &str) -> Option<PathBuf> {
    let path = shared_data().join(rel);
    if path.exists() {
        Some(path)
    } else {
        skip(&format!("the real data set is not at {}", path.display()))
    }
}

fn reference(python: &Path, args: &[&std::ffi::OsStr]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/maps_reference.py");
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "maps_reference.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

type Voxels = BTreeSet<(usize, usize, usize)>;

fn voxel_sets(v: &Value) -> BTreeMap<String, Option<Voxels>> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(name, list)| {
            let set = list.as_array().map(|items| {
                items
                    .iter()
                    .map(|p| {
                        let p = p.as_array().unwrap();
                        let at = |k: usize| p[k].as_u64().unwrap() as usize;
                        (at(0), at(1), at(2))
                    })
                    .collect()
            });
            (name.clone(), set)
        })
        .collect()
}

/// Our masks on the map at `map_dir` from `rt`, as voxel sets by ROI name.
fn ours(map_dir: &Path, rt: &Path) -> BTreeMap<String, Voxels> {
    let map = load_map(map_dir).unwrap();
    let parsed = rtstruct::read(rt).unwrap();
    let raster = rtstruct::rasterise(&parsed, &map.grid, &map.slice_sops).unwrap();
    let (c, r) = (map.grid.cols, map.grid.rows);
    raster
        .masks
        .iter()
        .map(|m| {
            let set = m
                .inside
                .iter()
                .enumerate()
                .filter(|(_, v)| **v)
                .map(|(i, _)| (i % c, (i / c) % r, i / (c * r)))
                .collect();
            (m.name.clone(), set)
        })
        .collect()
}

fn dice(a: &Voxels, b: &Voxels) -> f64 {
    let common = a.intersection(b).count() as f64;
    2.0 * common / (a.len() + b.len()).max(1) as f64
}

fn assert_rule_matches(python: &Path, series: &Path, rt: &Path) -> BTreeMap<String, Voxels> {
    let mine = ours(series, rt);
    let rule = voxel_sets(&reference(
        python,
        &["rule".as_ref(), series.as_os_str(), rt.as_os_str()],
    ));
    assert_eq!(
        mine.len(),
        rule.len(),
        "ROI names: {:?} vs {:?}",
        mine.keys(),
        rule.keys()
    );
    for (name, set) in &mine {
        let theirs = rule[name].as_ref().unwrap();
        assert_eq!(
            set,
            theirs,
            "ROI {name}: ours {} voxels, numpy rule {}",
            set.len(),
            theirs.len()
        );
    }
    mine
}

/// The GE series checks how a vendor's private tags are read (b-values from
/// GE's (0043,1039), directions grouped): its seven volumes hold the same
/// pixels, so every method gives ADC 0 — the numbers are checked on
/// dipy's `small_64D` below.
#[test]
fn ge_dwi_adc_matches_numpy_and_dipy() {
    let Some(python) = python() else { return };
    let Some(dwi) = data("dwi-ge/01_Ax_DWI_TENSOR_R2") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let report = run_map(&dwi, MapKind::Adc, Options::default(), out.path()).unwrap();
    assert_eq!(
        report.times,
        vec![0.0, 1000.0],
        "GE b-values from (0043,1039)"
    );
    assert_eq!(report.dims, [256, 256, 2]);
    let r = reference(
        &python,
        &["adc".as_ref(), dwi.as_os_str(), out.path().as_os_str()],
    );
    assert_eq!(r["volumes"], 7, "b=0 and six directions: {r}");
    assert!(r["voxels"].as_u64().unwrap() > 1000, "{r}");
    let reference = r["reference_max_abs_diff"].as_f64().unwrap();
    let dipy = r["dipy_max_abs_diff"].as_f64().unwrap();
    assert!(
        reference <= 1e-8,
        "SciPy signal-domain fit: max |ΔADC| {reference} mm²/s ({r})"
    );
    assert!(dipy <= 1e-6, "dipy MD: max |ΔADC| {dipy} mm²/s ({r})");
}

/// dipy's real DWI crop `small_64D` (a volunteer's brain, b = 0 and 64
/// directions at b ≈ 990–1000 s/mm², each its own b-value), written as a
/// classic MR series with the standard diffusion tags: our ADC equals the
/// SciPy fit of the same definition (b-values within 0.1 % grouped at
/// their mean, the directions' geometric mean, S0·e^(−b·ADC) in the signal
/// domain), and agrees with dipy's
/// tensor mean diffusivity — not exactly: the trace ADC from the geometric
/// mean of the directions equals MD only for an evenly spread direction
/// set at one b-value, which this real acquisition only approaches.
#[test]
fn dipy_small_64d_adc_matches_numpy_and_approaches_dipy_md() {
    let Some(python) = python() else { return };
    let dicom = tempfile::tempdir().unwrap();
    let made = reference(&python, &["make-dwi".as_ref(), dicom.path().as_os_str()]);
    assert_eq!(made["files"], 650, "{made}");
    let out = tempfile::tempdir().unwrap();
    let report = run_map(dicom.path(), MapKind::Adc, Options::default(), out.path()).unwrap();
    assert_eq!(report.dims, [10, 10, 10]);
    assert_eq!(
        report.times.len(),
        15,
        "b-values within 0.1 % are one: {:?}",
        report.times
    );
    let r = reference(
        &python,
        &[
            "adc".as_ref(),
            dicom.path().as_os_str(),
            out.path().as_os_str(),
        ],
    );
    assert_eq!(r["volumes"], 65, "{r}");
    let voxels = r["voxels"].as_u64().unwrap();
    assert!(voxels > 100, "the Otsu mask keeps the head: {r}");
    let reference = r["reference_max_rel_diff"].as_f64().unwrap();
    assert!(
        reference <= 1e-5,
        "SciPy signal-domain fit of the grouped b-values: max |ΔADC|/(ADC + 1e-6 mm²/s) {reference} ({r})"
    );
    let median_md = r["dipy_median_md"].as_f64().unwrap();
    assert!(
        (0.3e-3..3.5e-3).contains(&median_md),
        "a brain's MD in mm²/s: {r}"
    );
    let rel = r["dipy_median_rel_diff"].as_f64().unwrap();
    let corr = r["dipy_correlation"].as_f64().unwrap();
    assert!(rel < REL_BOUND, "median |ADC − MD| / MD {rel} ({r})");
    assert!(corr > CORR_BOUND, "correlation with dipy's MD {corr} ({r})");
}

#[test]
fn rtutils_mock_ct_masks_agree_with_rt_utils_and_match_the_rule() {
    let Some(python) = python() else { return };
    let Some(dir) = data("rtstruct-rtutils/mock_data") else {
        return;
    };
    // The CT folder also holds the RTSTRUCTs: the image reader skips them.
    let rt = dir.join("rt.dcm");
    let mine = assert_rule_matches(&python, &dir, &rt);
    let theirs = voxel_sets(&reference(
        &python,
        &["rtutils".as_ref(), dir.as_os_str(), rt.as_os_str()],
    ));
    let mut lines = Vec::new();
    for (name, set) in &mine {
        let Some(Some(other)) = theirs.get(name) else {
            panic!("rt-utils has no mask for {name}: {theirs:?}")
        };
        let d = dice(set, other);
        lines.push(format!(
            "{name}: ours {} voxels, rt-utils {}, only ours {}, only rt-utils {}, Dice {d:.4}",
            set.len(),
            other.len(),
            set.difference(other).count(),
            other.difference(set).count()
        ));
        // rt-utils rounds the contour points to whole pixels and fills with
        // cv2.fillPoly, which includes every pixel the outline touches: its
        // masks are ours plus (at most) a one-pixel rim.
        assert!(set.is_subset(other), "{}", lines.join("\n"));
        assert!(d >= 0.9, "{}", lines.join("\n"));
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{}", lines.join("\n"));
    }
    // And the whole command on the real CT: it runs, matched by references.
    let out = tempfile::tempdir().unwrap();
    let report = run_mask_average(&dir, &rt, out.path()).unwrap();
    assert_eq!(report.matched_by, "references");
    assert!(report.rois[0].voxels > 0);
}

#[test]
fn references_to_absent_slices_fall_back_to_geometry_and_warn() {
    let Some(python) = python() else { return };
    let Some(dir) = data("rtstruct-rtutils/mock_data") else {
        return;
    };
    let rt = dir.join("invalid_reference_rt.dcm");
    let mine = assert_rule_matches(&python, &dir, &rt);
    assert_eq!(mine.len(), 4);
    let out = tempfile::tempdir().unwrap();
    let report = run_mask_average(&dir, &rt, out.path()).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("lie on no slice")),
        "the z = 70 mm contours have no CT slice: {:?}",
        report.warnings
    );
}

#[test]
fn oblique_anisotropic_slices_match_the_rule() {
    let Some(python) = python() else { return };
    let Some(dir) = data("rtstruct-rtutils/oriented_data") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("oblique_rt.dcm");
    reference(
        &python,
        &["make-oblique-rt".as_ref(), dir.as_os_str(), rt.as_os_str()],
    );
    let mine = assert_rule_matches(&python, &dir, &rt);
    let blob = &mine["blob"];
    assert!(blob.len() > 300, "{} voxels", blob.len());
    let slices: BTreeSet<usize> = blob.iter().map(|v| v.2).collect();
    assert_eq!(slices.len(), 3, "a contour on every slice");
}

#[test]
fn pydicom_rtstruct_on_a_grid_in_its_frame_of_reference() {
    let Some(python) = python() else { return };
    let located = Command::new(&python)
        .args([
            "-c",
            "from pydicom.data import get_testdata_file; print(get_testdata_file('rtstruct.dcm'))",
        ])
        .output()
        .unwrap();
    let rt = PathBuf::from(String::from_utf8_lossy(&located.stdout).trim());
    assert!(rt.is_file(), "pydicom's rtstruct.dcm: {}", rt.display());
    let tmp = tempfile::tempdir().unwrap();
    let grid = tmp.path().join("grid");
    reference(
        &python,
        &["make-grid".as_ref(), rt.as_os_str(), grid.as_os_str()],
    );
    let mine = assert_rule_matches(&python, &grid, &rt);
    assert!(mine.values().any(|v| !v.is_empty()), "{mine:?}");
}
