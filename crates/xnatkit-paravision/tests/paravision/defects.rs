//! Defects found converting real ParaVision 5.1 and 6.0.1 studies (issue
//! 11), each on a synthetic scan built to have the property, and checked
//! where it matters with the real consumer, dcm2niix (Debian `dcm2niix`;
//! missing: skipped loudly, or a failure when `CI` is set).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Image, Synth, series_files, small_scan};
use dicom_core::Tag;
use dicom_dictionary_std::tags;

const CORONAL: [f64; 9] = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0];
const AXIAL: [f64; 9] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

fn convert_one(synth: &Synth) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    synth.write(&study, 1, 1);
    let out = tmp.path().join("out");
    let report = xnatkit_paravision::convert(&study, Some(&out), |_| {}).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.written.len(), 1);
    (tmp, out.join("1/1"))
}

fn images(dir: &Path) -> Vec<Image> {
    series_files(dir).iter().map(|f| Image::open(f)).collect()
}

fn close(a: &[f64], b: &[f64], tolerance: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tolerance)
}

fn f64s(image: &Image, tag: Tag) -> Vec<f64> {
    let element = image.obj.element(tag).unwrap();
    assert_eq!(element.vr(), dicom_core::VR::FD, "{tag} must be FD");
    element.to_multi_float64().unwrap()
}

fn dcm2niix() -> Option<PathBuf> {
    xnatkit_test_support::ci::tool("dcm2niix", "dcm2niix")
}

/// Run dcm2niix on a folder; returns its log and the files it wrote.
fn run_dcm2niix(tool: &Path, input: &Path, out: &Path) -> (String, Vec<PathBuf>) {
    std::fs::create_dir_all(out).unwrap();
    let output = Command::new(tool)
        .args(["-z", "n", "-f", "%s", "-o"])
        .arg(out)
        .arg(input)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    // dcm2niix reports QUADRUPED data (the generator's subject) as an
    // "Error" line on stderr although it converts it; anything else counts.
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Error") && !l.contains("Anatomical Orientation Type"))
        .collect();
    assert!(errors.is_empty(), "{log}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    (log, files)
}

/// The parts of a NIfTI-1 header the tests need, and the voxels' real values.
struct Nifti {
    dim: [usize; 5],
    /// srow_x, srow_y, srow_z: voxel → RAS mm.
    srow: [[f64; 4]; 3],
    voxels: Vec<f64>,
}

impl Nifti {
    fn read(path: &Path) -> Nifti {
        let bytes = std::fs::read(path).unwrap();
        let i16_at = |o: usize| i16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let f32_at = |o: usize| f32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        let dim = [0, 1, 2, 3, 4].map(|i| i16_at(40 + 2 * i).max(1) as usize);
        let srow = [0, 1, 2].map(|r| [0, 1, 2, 3].map(|c| f64::from(f32_at(280 + 16 * r + 4 * c))));
        let offset = f32_at(108) as usize;
        let (slope, intercept) = match f64::from(f32_at(112)) {
            s if s != 0.0 && s.is_finite() => (s, f64::from(f32_at(116))),
            _ => (1.0, 0.0),
        };
        let raw: Vec<f64> = match i16_at(70) {
            4 => bytes[offset..]
                .chunks_exact(2)
                .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
            16 => bytes[offset..]
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            other => panic!("{}: unexpected NIfTI datatype {other}", path.display()),
        };
        let voxels = raw.iter().map(|v| v * slope + intercept).collect();
        Nifti { dim, srow, voxels }
    }

    /// RAS position of voxel (i, j, k).
    fn world(&self, i: usize, j: usize, k: usize) -> [f64; 3] {
        self.srow
            .map(|r| r[0] * i as f64 + r[1] * j as f64 + r[2] * k as f64 + r[3])
    }

    fn voxel(&self, i: usize, j: usize, k: usize) -> f64 {
        self.voxels[i + self.dim[1] * (j + self.dim[2] * k)]
    }
}

/// D1: a 3-D scan stored in reverse slice order. Stored plane k lies
/// (planes − 1 − k) steps from VisuCorePosition along the normal; dcm2niix
/// must put every plane's pixels at that position.
#[test]
fn d1_reverse_disk_slice_order_places_each_stored_plane_where_it_was_acquired() {
    let planes = 22;
    let synth = Synth {
        depth: (planes, 11.0),
        groups: vec![(1, "FG_REPETITION")],
        orientation: CORONAL,
        first_position: [-7.0, -5.25, 3.75],
        extra_visu: vec![(
            "VisuCoreDiskSliceOrder",
            "disk_reverse_slice_order".to_owned(),
        )],
        ..small_scan("FLASH_3D_reverse")
    };
    let (tmp, dir) = convert_one(&synth);
    let step = 0.5;
    let normal = [0.0, 1.0, 0.0];
    for (k, image) in images(&dir).iter().enumerate() {
        let ipp = image.numbers(tags::IMAGE_POSITION_PATIENT);
        let along = (planes - 1 - k) as f64 * step;
        let want: Vec<f64> = (0..3)
            .map(|i| synth.first_position[i] + along * normal[i])
            .collect();
        assert!(close(&ipp, &want, 1e-9), "plane {k}: {ipp:?} vs {want:?}");
    }

    let Some(tool) = dcm2niix() else { return };
    let (log, files) = run_dcm2niix(&tool, &dir, &tmp.path().join("nifti"));
    let nii: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "nii"))
        .collect();
    assert_eq!(nii.len(), 1, "{log}");
    let nifti = Nifti::read(nii[0]);
    assert_eq!(
        nifti.dim[1] * nifti.dim[2] * nifti.dim[3],
        8 * 6 * planes,
        "{log}"
    );
    // Stored value = 100·plane + 10·y + x − 500 in frame 0: every voxel names
    // the stored plane it came from, and must sit where that plane was
    // acquired, whatever axes dcm2niix chose (RAS y = −LPS y; the planes are
    // coronal, so LPS y alone says which plane a voxel lies in).
    for k in 0..nifti.dim[3] {
        for j in 0..nifti.dim[2] {
            for i in 0..nifti.dim[1] {
                let stored = ((nifti.voxel(i, j, k) - synth.offset(0)) / synth.slope(0)).round();
                let stored_plane = ((stored as i64 + 500) / 100) as usize;
                let lps_y = -nifti.world(i, j, k)[1];
                let want = synth.first_position[1] + (planes - 1 - stored_plane) as f64 * step;
                assert!(
                    (lps_y - want).abs() < 1e-3,
                    "voxel ({i},{j},{k}) holds stored plane {stored_plane} at y={lps_y}, acquired at {want}\n{log}"
                );
            }
        }
    }
}

/// D2: a RARE scan with an axial and a coronal package, the coronal one
/// transposed: its frames are stored with x and y exchanged.
#[test]
fn d2_transposed_frames_get_swapped_rows_columns_and_pixel_spacing() {
    let synth = Synth {
        groups: vec![(4, "FG_SLICE")],
        per_slice: Some(vec![
            (AXIAL, [-7.0, -3.75, -0.5]),
            (AXIAL, [-7.0, -3.75, 0.5]),
            (CORONAL, [-7.0, -0.5, 3.75]),
            (CORONAL, [-7.0, 0.5, 3.75]),
        ]),
        extra_visu: vec![("VisuCoreTransposition", "( 4 )\n0 0 1 1".to_owned())],
        ..small_scan("RARE_two_packages")
    };
    let (_tmp, dir) = convert_one(&synth);
    let all = images(&dir);
    assert_eq!(all.len(), 4);
    for (slice, image) in all.iter().enumerate() {
        let transposed = slice >= 2;
        let (rows, columns, spacing) = if transposed {
            // Stored x runs along VisuCoreSize[1] (6 px over 9 mm).
            (8.0, 6.0, vec![16.0 / 8.0, 9.0 / 6.0])
        } else {
            (6.0, 8.0, vec![9.0 / 6.0, 16.0 / 8.0])
        };
        assert_eq!(image.number(tags::ROWS), rows, "slice {slice}");
        assert_eq!(image.number(tags::COLUMNS), columns, "slice {slice}");
        assert!(
            close(&image.numbers(tags::PIXEL_SPACING), &spacing, 1e-12),
            "slice {slice}: {:?}",
            image.numbers(tags::PIXEL_SPACING)
        );
        // Orientation and position describe the data as stored: copied.
        let (orientation, position) = synth.per_slice.as_ref().unwrap()[slice];
        assert!(close(
            &image.numbers(tags::IMAGE_ORIENTATION_PATIENT),
            &orientation[..6],
            1e-12
        ));
        assert!(close(
            &image.numbers(tags::IMAGE_POSITION_PATIENT),
            &position,
            1e-12
        ));
        assert_eq!(image.real_values().len(), 48);
    }

    // The finding itself: square 256² frames, extent 40×35 mm, transposed.
    let finding = Synth {
        size: [256, 256],
        extent: [40.0, 35.0],
        groups: vec![(1, "FG_SLICE")],
        orientation: CORONAL,
        extra_visu: vec![("VisuCoreTransposition", "( 1 )\n1".to_owned())],
        ..small_scan("RARE_coronal_transposed")
    };
    let (_tmp, dir) = convert_one(&finding);
    let image = &images(&dir)[0];
    assert_eq!(
        image.numbers(tags::PIXEL_SPACING),
        vec![0.15625, 0.13671875]
    );
}

/// D3: SpacingBetweenSlices of a 3-D scan is the step between planes, not
/// VisuCoreSlicePacksSliceDist (the slab thickness); 2-D scans keep the
/// package's slice distance.
#[test]
fn d3_spacing_between_slices_is_the_plane_step_on_3d_scans() {
    let volume = Synth {
        depth: (16, 15.0),
        groups: vec![(1, "FG_REPETITION")],
        extra_visu: vec![("VisuCoreSlicePacksSliceDist", "( 1 )\n15".to_owned())],
        ..small_scan("FLASH_3D_slab")
    };
    let (_tmp, dir) = convert_one(&volume);
    for image in images(&dir) {
        assert_eq!(image.number(tags::SPACING_BETWEEN_SLICES), 0.9375);
        assert_eq!(image.number(tags::SLICE_THICKNESS), 0.9375);
        assert_eq!(image.number(tags::NUMBER_OF_SLICES), 16.0);
    }
    let slices = Synth {
        slice_step: 1.2,
        extra_visu: vec![("VisuCoreSlicePacksSliceDist", "( 1 )\n1.2".to_owned())],
        ..small_scan("RARE_2D")
    };
    let (_tmp, dir) = convert_one(&slices);
    for image in images(&dir) {
        assert_eq!(image.number(tags::SPACING_BETWEEN_SLICES), 1.2);
    }
}

/// A DTI scan: one A0 and three directions at nominal b = 500, effective b
/// from the method, directions in the read/phase/slice frame.
fn dti_scan() -> Synth {
    Synth {
        groups: vec![(2, "FG_SLICE"), (4, "FG_DIFFUSION")],
        orientation: CORONAL,
        first_position: [-7.0, -0.5, 3.75],
        extra_method: vec![
            ("PVM_DwAoImages", "1".to_owned()),
            ("PVM_DwNDiffDir", "3".to_owned()),
            ("PVM_DwNDiffExpEach", "1".to_owned()),
            ("PVM_DwBvalEach", "( 1 )\n500".to_owned()),
            ("PVM_DwEffBval", "( 4 )\n25.3 525.1 524.9 525.4".to_owned()),
            ("PVM_DwDir", "( 3, 3 )\n1 0 0 0 1 0 0.6 0 0.8".to_owned()),
        ],
        ..small_scan("DtiEpi")
    }
}

/// D4: nominal b in DiffusionBValue (FD), effective b in our private block,
/// direction rotated into the patient frame; dcm2niix's bval/bvec agree.
#[test]
fn d4_diffusion_is_written_the_way_dcm2niix_reads_it() {
    let synth = dti_scan();
    let (tmp, dir) = convert_one(&synth);
    let all = images(&dir);
    assert_eq!(all.len(), 8);
    // Read, phase, slice = the coronal orientation rows (L, F, P in LPS).
    let patient_directions = [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.6, 0.8, 0.0]];
    let effective = [25.3, 525.1, 524.9, 525.4];
    for (index, image) in all.iter().enumerate() {
        let experiment = index / 2;
        let directionality = image.text(tags::DIFFUSION_DIRECTIONALITY);
        let b = f64s(image, tags::DIFFUSION_B_VALUE);
        assert_eq!(b, vec![if experiment == 0 { 0.0 } else { 500.0 }]);
        assert_eq!(
            image.number(Tag(0x1061, 0x1101)),
            effective[experiment],
            "effective b in (1061,1101)"
        );
        assert_eq!(
            image.text(Tag(0x1061, 0x0011)),
            xnatkit_paravision::PARAVISION_CREATOR
        );
        if experiment == 0 {
            assert_eq!(directionality, "NONE");
            assert!(
                image
                    .obj
                    .element_opt(tags::DIFFUSION_GRADIENT_ORIENTATION)
                    .unwrap()
                    .is_none()
            );
        } else {
            assert_eq!(directionality, "DIRECTIONAL");
            let g = f64s(image, tags::DIFFUSION_GRADIENT_ORIENTATION);
            let want = patient_directions[experiment - 1];
            assert!(close(&g, &want, 1e-12), "{g:?}");
        }
    }

    let Some(tool) = dcm2niix() else { return };
    let (log, files) = run_dcm2niix(&tool, &dir, &tmp.path().join("nifti"));
    let find = |ext: &str| {
        let path = files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} from dcm2niix:\n{log}"));
        std::fs::read_to_string(path).unwrap()
    };
    let bvals: Vec<f64> = find("bval")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(bvals, vec![0.0, 500.0, 500.0, 500.0], "{log}");
    let bvec_text = find("bvec");
    let bvec: Vec<Vec<f64>> = bvec_text
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(bvec.len(), 3, "{bvec_text}");
    // dcm2niix expresses bvecs in image axes (signs follow its flips):
    // their magnitudes are the read/phase/slice components of PVM_DwDir.
    // Before v1.0.20230411 dcm2niix ignored (0018,9089) when the
    // manufacturer is Bruker (it only decoded ParaVision's own b-matrix
    // export): all-zero vectors there, never wrong ones.
    let version: u32 = log
        .split("v1.0.")
        .nth(1)
        .and_then(|rest| rest.get(..8))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0);
    let logical = if version >= 20230411 {
        [
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.6, 0.0, 0.8],
        ]
    } else {
        eprintln!(
            "NOTE: dcm2niix {version} ignores (0018,9089) for Bruker; checking for zero bvecs"
        );
        [[0.0; 3]; 4]
    };
    for (volume, want) in logical.iter().enumerate() {
        for axis in 0..3 {
            assert!(
                (bvec[axis][volume].abs() - want[axis]).abs() < 1e-3,
                "volume {volume} axis {axis}: {bvec_text}\n{log}"
            );
        }
    }
    let nii = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "nii"))
        .unwrap();
    let nifti = Nifti::read(nii);
    assert_eq!(nifti.dim[..5], [4, 8, 6, 2, 4], "{log}");
}

/// D5: FAIR_RARE has no VisuAcqRepetitionTime: method PVM_RepetitionTime,
/// else acqp ACQ_repetition_time per frame.
#[test]
fn d5_repetition_time_falls_back_to_method_then_acqp_per_frame() {
    let fair = Synth {
        repetition_time: None,
        extra_method: vec![("PVM_RepetitionTime", "10500".to_owned())],
        extra_acqp: vec![("ACQ_repetition_time", "( 1 )\n10500".to_owned())],
        ..small_scan("FAIR_RARE")
    };
    let (_tmp, dir) = convert_one(&fair);
    for image in images(&dir) {
        assert_eq!(image.number(tags::REPETITION_TIME), 10500.0);
    }
    let multi_tr = Synth {
        repetition_time: None,
        groups: vec![(2, "FG_SLICE"), (3, "FG_CYCLE")],
        extra_acqp: vec![("ACQ_repetition_time", "( 3 )\n800 1500 3000".to_owned())],
        ..small_scan("RAREVTR")
    };
    let (_tmp, dir) = convert_one(&multi_tr);
    let trs: Vec<f64> = images(&dir)
        .iter()
        .map(|i| i.number(tags::REPETITION_TIME))
        .collect();
    assert_eq!(trs, [800.0, 800.0, 1500.0, 1500.0, 3000.0, 3000.0]);
}

/// A RAREVTR scan whose visu_pars and acqp give no per-frame TR: the
/// method's `MultiRepTime` list does (before `PVM_RepetitionTime`, which
/// RAREVTR sets to the first of them), and EchoTrainLength comes from
/// `PVM_RareFactor` when visu_pars has no `VisuAcqEchoTrainLength`.
#[test]
fn d5b_variable_tr_from_method_multireptime_and_echo_train_from_rare_factor() {
    let vtr = Synth {
        repetition_time: None,
        groups: vec![(2, "FG_SLICE"), (3, "FG_MOVIE")],
        extra_method: vec![
            ("PVM_RepetitionTime", "800".to_owned()),
            ("MultiRepTime", "( 3 )\n800 1500 3000".to_owned()),
            ("PVM_RareFactor", "8".to_owned()),
        ],
        ..small_scan("RAREVTR")
    };
    let (_tmp, dir) = convert_one(&vtr);
    let converted = images(&dir);
    let trs: Vec<f64> = converted
        .iter()
        .map(|i| i.number(tags::REPETITION_TIME))
        .collect();
    assert_eq!(trs, [800.0, 800.0, 1500.0, 1500.0, 3000.0, 3000.0]);
    for image in &converted {
        assert_eq!(image.number(tags::ECHO_TRAIN_LENGTH), 8.0);
    }
    // visu_pars' own value wins over the method's.
    let with_visu = Synth {
        extra_visu: vec![("VisuAcqEchoTrainLength", "4".to_owned())],
        ..vtr
    };
    let (_tmp, dir) = convert_one(&with_visu);
    for image in images(&dir) {
        assert_eq!(image.number(tags::ECHO_TRAIN_LENGTH), 4.0);
    }
}

/// D7: two packages in different orientations become two series, each
/// with its own slice count and instance numbers; dcm2niix stacks each into
/// one complete volume series without missing-slice complaints.
#[test]
fn d7_slice_packages_become_series_with_their_own_slice_count() {
    let synth = Synth {
        groups: vec![(4, "FG_SLICE"), (2, "FG_REPETITION")],
        per_slice: Some(vec![
            (AXIAL, [-7.0, -3.75, -0.5]),
            (AXIAL, [-7.0, -3.75, 0.5]),
            (CORONAL, [-7.0, -0.5, 3.75]),
            (CORONAL, [-7.0, 0.5, 3.75]),
        ]),
        extra_visu: vec![
            ("VisuCoreSlicePacksDef", "(0, 2)".to_owned()),
            (
                "VisuCoreSlicePacksSlices",
                "( 2 )\n(0, 2) (2, 2)".to_owned(),
            ),
            ("VisuCoreSlicePacksSliceDist", "( 2 )\n1 1".to_owned()),
        ],
        ..small_scan("RARE_axial_coronal")
    };
    let (tmp, dir) = convert_one(&synth);
    let all = images(&dir);
    assert_eq!(all.len(), 8);
    let mut by_series: std::collections::BTreeMap<String, Vec<&Image>> = Default::default();
    for image in &all {
        assert_eq!(image.number(tags::NUMBER_OF_SLICES), 2.0);
        assert_eq!(image.number(tags::SPACING_BETWEEN_SLICES), 1.0);
        by_series
            .entry(image.text(tags::SERIES_INSTANCE_UID))
            .or_default()
            .push(image);
    }
    assert_eq!(by_series.len(), 2);
    let mut numbers = Vec::new();
    for images in by_series.values() {
        let instances: Vec<f64> = images
            .iter()
            .map(|i| i.number(tags::INSTANCE_NUMBER))
            .collect();
        assert_eq!(instances, [1.0, 2.0, 3.0, 4.0]);
        let iops: std::collections::BTreeSet<String> = images
            .iter()
            .map(|i| i.text(tags::IMAGE_ORIENTATION_PATIENT))
            .collect();
        assert_eq!(iops.len(), 1, "one orientation per series");
        assert_eq!(images[0].number(tags::IMAGES_IN_ACQUISITION), 4.0);
        numbers.push(images[0].text(tags::SERIES_NUMBER));
        assert!(
            images[0]
                .text(tags::SERIES_DESCRIPTION)
                .contains("(package ")
        );
    }
    numbers.sort();
    assert_eq!(numbers, ["10101", "10102"]);

    let Some(tool) = dcm2niix() else { return };
    let (log, files) = run_dcm2niix(&tool, &dir, &tmp.path().join("nifti"));
    let nii: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "nii"))
        .collect();
    assert_eq!(nii.len(), 2, "{log}");
    assert!(!log.to_lowercase().contains("missing"), "{log}");
    for path in nii {
        let nifti = Nifti::read(path);
        assert_eq!(nifti.dim[3..5], [2, 2], "{}\n{log}", path.display());
    }
}

/// D8: the two FAIR inversions differ in more than UIDs: mode in (1061,1102),
/// index in (1061,1103), and ImageComments.
#[test]
fn d8_fair_inversion_mode_is_encoded_per_frame() {
    let synth = Synth {
        groups: vec![(2, "FG_SLICE"), (2, "FG_IRMODE")],
        repetition_time: None,
        extra_method: vec![("PVM_RepetitionTime", "10500".to_owned())],
        ..small_scan("FAIR_RARE")
    };
    let (_tmp, dir) = convert_one(&synth);
    let modes: Vec<(String, String)> = images(&dir)
        .iter()
        .map(|i| {
            assert_eq!(
                i.text(Tag(0x1061, 0x0011)),
                xnatkit_paravision::PARAVISION_CREATOR
            );
            assert!(i.text(tags::IMAGE_COMMENTS).contains("FAIR inversion"));
            (i.text(Tag(0x1061, 0x1102)), i.text(Tag(0x1061, 0x1103)))
        })
        .collect();
    let want = [
        ("SELECTIVE", "1"),
        ("SELECTIVE", "1"),
        ("NONSELECTIVE", "2"),
        ("NONSELECTIVE", "2"),
    ];
    for (got, want) in modes.iter().zip(want) {
        assert_eq!((got.0.as_str(), got.1.as_str()), want);
    }
}

/// The new attributes (diffusion sequence, our private block, per-package
/// series, transposed frames) add no dciodvfy errors.
#[test]
fn defect_scans_pass_dciodvfy() {
    let Some(dciodvfy) = xnatkit_test_support::ci::tool("dciodvfy", "dicom3tools") else {
        return;
    };
    let scans = [
        dti_scan(),
        Synth {
            groups: vec![(2, "FG_SLICE"), (2, "FG_IRMODE")],
            repetition_time: None,
            extra_method: vec![("PVM_RepetitionTime", "10500".to_owned())],
            ..small_scan("FAIR_RARE")
        },
        Synth {
            groups: vec![(4, "FG_SLICE")],
            per_slice: Some(vec![
                (AXIAL, [-7.0, -3.75, -0.5]),
                (AXIAL, [-7.0, -3.75, 0.5]),
                (CORONAL, [-7.0, -0.5, 3.75]),
                (CORONAL, [-7.0, 0.5, 3.75]),
            ]),
            extra_visu: vec![("VisuCoreTransposition", "( 4 )\n0 0 1 1".to_owned())],
            ..small_scan("RARE_two_packages")
        },
        Synth {
            depth: (4, 2.0),
            groups: vec![(1, "FG_REPETITION")],
            extra_visu: vec![(
                "VisuCoreDiskSliceOrder",
                "disk_reverse_slice_order".to_owned(),
            )],
            ..small_scan("FLASH_3D_reverse")
        },
    ];
    let mut checked = 0;
    for synth in &scans {
        let (_tmp, dir) = convert_one(synth);
        for file in series_files(&dir) {
            let output = Command::new(&dciodvfy).arg(&file).output().unwrap();
            let report = String::from_utf8_lossy(&output.stderr).into_owned()
                + &String::from_utf8_lossy(&output.stdout);
            let errors: Vec<&str> = report.lines().filter(|l| l.contains("Error")).collect();
            assert!(errors.is_empty(), "{}:\n{report}", file.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 8 + 4 + 4 + 4);
}
