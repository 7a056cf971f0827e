//! The T1 time base on a synthetic ParaVision RARE-VTR scan whose echo
//! train (10 ms spacing × (8 echoes − ½) = 75 ms) makes the recovery time
//! differ from the TR: the recovery base (the default for a ParaVision
//! scan folder) recovers the true T1, the repetition base overestimates it,
//! and the record says which was used. DICOM inputs keep the repetition
//! base unless asked, and refuse the recovery base without what it needs.

use std::path::Path;

use dicom_dictionary_std::tags;
use serde_json::Value;
use xnatkit_maps::{Error, MapKind, Options, TimeBase, run_map};
use xnatkit_test_support::paravision::RareVtr;

use crate::support::{Geometry, Rng, bias_spread, compartment, phantom, read_nifti, write_classic};

const TRUTHS: [f64; 3] = [800.0, 1200.0, 1600.0];
const M0: f64 = 1000.0;
/// SNR 200: the T1 limits of docs/maps.md are |bias| ≤ 1 %, spread ≤ 3 %.
const SIGMA: f64 = M0 / 200.0;

/// Writes `scan` with three compartments of known T1, signal
/// M0·(1 − e^(−(TR − echo train)/T1)) plus Rician noise.
fn write_scan(dir: &Path, scan: &RareVtr) -> std::path::PathBuf {
    let g = Geometry::axial(scan.rows, scan.cols, scan.slices);
    let train = scan.echo_train();
    let trs = scan.repetition_times.clone();
    let rng = std::cell::RefCell::new(Rng::new(29));
    scan.write(&dir.join("study"), 7, |k, _, row, col| {
        let c = compartment(&g, col, row);
        let clean = if c == 0 {
            0.0
        } else {
            M0 * (1.0 - (-(trs[k] - train) / TRUTHS[c - 1]).exp()).max(0.0)
        };
        rng.borrow_mut().rician(clean, SIGMA)
    })
}

/// T1 of the fit-valid voxels per compartment, and the fraction valid.
fn t1_per_compartment(out: &Path, scan: &RareVtr) -> ([Vec<f64>; 3], f64) {
    let g = Geometry::axial(scan.rows, scan.cols, scan.slices);
    let (dims, map, _) = read_nifti(&out.join("T1_map.nii.gz"));
    let (_, valid, _) = read_nifti(&out.join("T1_valid.nii.gz"));
    assert_eq!(dims, [g.cols, g.rows, g.slices]);
    let mut per: [Vec<f64>; 3] = Default::default();
    let mut object = 0usize;
    for s in 0..g.slices {
        for r in 0..g.rows {
            for c in 0..g.cols {
                let comp = compartment(&g, c, r);
                if comp == 0 {
                    continue;
                }
                object += 1;
                let i = c + g.cols * (r + g.rows * s);
                if valid[i] == 1.0 {
                    per[comp - 1].push(map[i]);
                }
            }
        }
    }
    let fraction = per.iter().map(Vec::len).sum::<usize>() as f64 / object as f64;
    (per, fraction)
}

fn maps_json(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("maps.json")).unwrap()).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn biases(per: &[Vec<f64>; 3]) -> Vec<(f64, f64)> {
    per.iter()
        .zip(TRUTHS)
        .map(|(values, truth)| bias_spread(values, truth))
        .collect()
}

fn with_base(base: TimeBase) -> Options {
    Options {
        t1_time_base: Some(base),
        ..Options::default()
    }
}

#[test]
fn recovery_base_recovers_t1_of_a_rare_vtr_scan_and_repetition_overestimates_it() {
    let dir = tempfile::tempdir().unwrap();
    let scan_spec = RareVtr::default();
    let scan = write_scan(dir.path(), &scan_spec);
    let trs = scan_spec.repetition_times.clone();
    let recovery: Vec<f64> = trs.iter().map(|t| t - 75.0).collect();

    // The default for a ParaVision scan folder: the recovery base.
    let out = dir.path().join("default");
    let report = run_map(&scan, MapKind::T1Sr, Options::default(), &out).unwrap();
    assert_eq!(report.timing.time_base, "recovery");
    assert_eq!(report.times, recovery);
    let (per, fraction) = t1_per_compartment(&out, &scan_spec);
    assert!(fraction > 0.95, "only {fraction} valid");
    let recovered = biases(&per);
    for ((bias, spread), truth) in recovered.iter().zip(TRUTHS) {
        assert!(
            bias.abs() <= 0.01 && *spread <= 0.03,
            "recovery base, T1 {truth}: bias {bias:.4}, spread {spread:.4}"
        );
    }
    let json = maps_json(&out);
    assert_eq!(json["time_base"], "recovery");
    assert_eq!(numbers(&json["times"]), recovery);
    assert_eq!(numbers(&json["repetition_times"]), trs);
    assert_eq!(json["echo_train"]["duration_ms"], 75.0);
    assert_eq!(json["echo_train"]["echo_spacing_ms"], 10.0);
    assert_eq!(json["echo_train"]["echoes"], 8.0);
    let source = json["time_source"].as_str().unwrap();
    assert!(
        source.contains("PVM_EchoTime") && source.contains("MultiRepTime"),
        "{source}"
    );
    let derivation = crate::support::read_text(
        &out.join("T1_map_dicom/IM0001.dcm"),
        tags::DERIVATION_DESCRIPTION,
    );
    assert!(
        derivation.contains("time base recovery: t = TR − 75 ms echo train"),
        "{derivation}"
    );

    // The same scan against the nominal TR: T1 too long by 12–18 %.
    let out = dir.path().join("repetition");
    let report = run_map(&scan, MapKind::T1Sr, with_base(TimeBase::Repetition), &out).unwrap();
    assert_eq!(report.timing.time_base, "repetition");
    assert_eq!(report.times, trs);
    assert!(report.timing.echo_train.is_none());
    let (per, _) = t1_per_compartment(&out, &scan_spec);
    let nominal = biases(&per);
    for ((bias, _), truth) in nominal.iter().zip(TRUTHS) {
        assert!(
            *bias > 0.08,
            "repetition base, T1 {truth}: bias {bias:.4} (expected the echo train's overestimate)"
        );
    }
    let json = maps_json(&out);
    assert_eq!(json["time_base"], "repetition");
    assert!(json.get("echo_train").is_none(), "{json}");
    assert!(
        json["time_source"]
            .as_str()
            .unwrap()
            .contains("MultiRepTime"),
        "{json}"
    );
    #[allow(clippy::print_stderr)]
    {
        // The table in docs/maps.md ("T1 time base") comes from this output.
        eprintln!("| T1 truth | recovery: bias | spread | repetition: bias | spread |");
        for ((truth, r), n) in TRUTHS.iter().zip(&recovered).zip(&nominal) {
            eprintln!(
                "| {truth} ms | {:+.2} % | {:.2} % | {:+.2} % | {:.2} % |",
                100.0 * r.0,
                100.0 * r.1,
                100.0 * n.0,
                100.0 * n.1
            );
        }
    }
}

#[test]
fn without_a_visu_pars_tr_the_method_gives_the_times() {
    // FAIR_RARE-like: no VisuAcqRepetitionTime, and no acqp TR list either,
    // so only the method's MultiRepTime says which frame has which TR.
    let dir = tempfile::tempdir().unwrap();
    let spec = RareVtr {
        visu_repetition_time: false,
        acqp_times: false,
        visu_echo_train: false,
        ..RareVtr::default()
    };
    let scan = write_scan(dir.path(), &spec);
    let out = dir.path().join("out");
    let report = run_map(&scan, MapKind::T1Sr, Options::default(), &out).unwrap();
    assert_eq!(report.timing.time_base, "recovery");
    let expected: Vec<f64> = spec.repetition_times.iter().map(|t| t - 75.0).collect();
    assert_eq!(report.times, expected);
    let (per, fraction) = t1_per_compartment(&out, &spec);
    assert!(fraction > 0.95, "only {fraction} valid");
    for ((bias, _), truth) in biases(&per).iter().zip(TRUTHS) {
        assert!(bias.abs() <= 0.01, "T1 {truth}: bias {bias:.4}");
    }
}

#[test]
fn a_recovery_time_of_zero_or_less_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RareVtr {
        repetition_times: vec![60.0, 400.0, 1500.0, 6000.0],
        ..RareVtr::default()
    };
    let scan = write_scan(dir.path(), &spec);
    let out = dir.path().join("out");
    let err = run_map(&scan, MapKind::T1Sr, Options::default(), &out).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RecoveryNotPositive {
                repetition: 60.0,
                recovery: -15.0,
                train: 75.0,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("repetition time 60 ms") && text.contains("-15 ms"),
        "{text}"
    );
    assert!(!out.exists(), "no output on error");
    // The repetition base still fits it.
    run_map(&scan, MapKind::T1Sr, with_base(TimeBase::Repetition), &out).unwrap();
}

#[test]
fn a_method_without_an_echo_train_falls_back_by_default_and_refuses_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RareVtr::default();
    let scan = write_scan(dir.path(), &spec);
    let method = scan.join("method");
    let text = std::fs::read_to_string(&method).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("##$PVM_RareFactor="))
        .collect();
    std::fs::write(&method, kept.join("\n") + "\n").unwrap();

    let out = dir.path().join("default");
    let report = run_map(&scan, MapKind::T1Sr, Options::default(), &out).unwrap();
    assert_eq!(report.timing.time_base, "repetition");
    assert_eq!(report.times, spec.repetition_times);
    assert!(
        report.timing.time_source.contains("PVM_RareFactor"),
        "{}",
        report.timing.time_source
    );

    let out = dir.path().join("asked");
    let err = run_map(&scan, MapKind::T1Sr, with_base(TimeBase::Recovery), &out).unwrap_err();
    assert!(matches!(err, Error::TimeBase { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("PVM_RareFactor") && text.contains("--time-base repetition"),
        "{text}"
    );
    assert!(!out.exists());

    // An echo spacing is never taken for a ParaVision scan (its method has one).
    let options = Options {
        echo_spacing_ms: Some(10.0),
        ..Options::default()
    };
    let err = run_map(&scan, MapKind::T1Sr, options, &out).unwrap_err();
    assert!(err.to_string().contains("PVM_EchoTime"), "{err}");
}

#[test]
fn the_converted_series_fitted_as_dicom_needs_the_echo_spacing_and_then_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let spec = RareVtr::default();
    let scan = write_scan(dir.path(), &spec);
    let converted = dir.path().join("dicom");
    let report = xnatkit_paravision::convert(&scan, Some(&converted), |_| {}).unwrap();
    let series = &report.written[0].dir;

    // Today's DICOM behaviour is the default: the repetition times.
    let out = dir.path().join("dicom-default");
    let plain = run_map(series, MapKind::T1Sr, Options::default(), &out).unwrap();
    assert_eq!(plain.timing.time_base, "repetition");
    assert_eq!(plain.times, spec.repetition_times);

    // Recovery needs the echo spacing, which no DICOM header holds.
    let out = dir.path().join("dicom-refused");
    let err = run_map(series, MapKind::T1Sr, with_base(TimeBase::Recovery), &out).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::TimeBase { .. }), "{text}");
    assert!(
        text.contains("echo spacing") && text.contains("--time-base repetition"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(!out.exists());

    // With it, EchoTrainLength from the conversion does the rest: the same
    // times and the same map as the scan folder itself.
    let options = Options {
        t1_time_base: Some(TimeBase::Recovery),
        echo_spacing_ms: Some(10.0),
        ..Options::default()
    };
    let out = dir.path().join("dicom-recovery");
    let fitted = run_map(series, MapKind::T1Sr, options, &out).unwrap();
    assert_eq!(fitted.timing.time_base, "recovery");
    let train = fitted.timing.echo_train.clone().unwrap();
    assert_eq!((train.echoes, train.duration_ms), (8.0, 75.0));
    assert!(train.source.contains("EchoTrainLength"), "{}", train.source);
    let direct = dir.path().join("direct");
    let from_scan = run_map(&scan, MapKind::T1Sr, Options::default(), &direct).unwrap();
    assert_eq!(fitted.times, from_scan.times);
    let (_, a, _) = read_nifti(&out.join("T1_map.nii.gz"));
    let (_, b, _) = read_nifti(&direct.join("T1_map.nii.gz"));
    assert_eq!(a, b, "the DICOM series and its scan folder give one map");
}

#[test]
fn a_dicom_series_without_echo_train_length_refuses_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let g = Geometry::axial(12, 12, 2);
    let trs = [300.0, 1000.0, 3000.0];
    let images = phantom(
        &g,
        &trs,
        1.0,
        5,
        |_, _, k| 1000.0 * (1.0 - (-trs[k] / 900.0).exp()),
        "tr",
    );
    let input = dir.path().join("in");
    let order: Vec<usize> = (0..images.len()).collect();
    write_classic(&input, &g, &images, &order);
    let out = dir.path().join("out");
    let options = Options {
        t1_time_base: Some(TimeBase::Recovery),
        echo_spacing_ms: Some(10.0),
        ..Options::default()
    };
    let err = run_map(&input, MapKind::T1Sr, options, &out).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::TimeBase { .. }), "{text}");
    assert!(
        text.contains("EchoTrainLength (0018,0091) is missing")
            && text.contains("--time-base repetition")
            && text.contains(".dcm"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(!out.exists(), "no output on error");

    // An echo spacing without the recovery base would be ignored: refused.
    let options = Options {
        echo_spacing_ms: Some(10.0),
        ..Options::default()
    };
    let err = run_map(&input, MapKind::T1Sr, options, &out).unwrap_err();
    assert!(err.to_string().contains("--time-base recovery"), "{err}");
}
