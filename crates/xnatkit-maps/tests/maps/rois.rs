//! RTSTRUCT rasterisation on synthetic maps: the pixel-centre rule with
//! boundary points inside, holes by even-odd, contours put on slices by
//! plane distance, clipping and skipping with warnings, frame-of-reference
//! refusal, and the statistics files.

use std::path::Path;

use xnatkit_maps::{Error, MapKind, Options, run_map, run_mask_average};

use crate::support::{
    FRAME_OF_REFERENCE, Geometry, RoiSpec, phantom, write_classic, write_rtstruct,
};

/// A T2 map (T2 = 50 ms in the object, 3 slices) in `dir/map`.
fn make_map(dir: &Path) -> Geometry {
    let g = Geometry::axial(30, 36, 3);
    let tes: Vec<f64> = (1..=8).map(|k| 10.0 * k as f64).collect();
    let t = tes.clone();
    let images = phantom(
        &g,
        &tes,
        0.2,
        9,
        move |_, _, k| 1000.0 * (-t[k] / 50.0).exp(),
        "te",
    );
    let order: Vec<usize> = (0..images.len()).collect();
    write_classic(&dir.join("in"), &g, &images, &order);
    run_map(
        &dir.join("in"),
        MapKind::T2,
        Options::default(),
        &dir.join("map"),
    )
    .unwrap();
    g
}

/// Patient point of continuous pixel (col, row) on slice `s`.
fn at(g: &Geometry, s: usize, col: f64, row: f64) -> [f64; 3] {
    let p = g.position(s);
    [p[0] + col * g.spacing[1], p[1] + row * g.spacing[0], p[2]]
}

fn square(g: &Geometry, s: usize, c0: f64, r0: f64, c1: f64, r1: f64) -> Vec<[f64; 3]> {
    vec![
        at(g, s, c0, r0),
        at(g, s, c1, r0),
        at(g, s, c1, r1),
        at(g, s, c0, r1),
    ]
}

fn closed(points: Vec<[f64; 3]>) -> (String, Vec<[f64; 3]>, Option<String>) {
    ("CLOSED_PLANAR".to_owned(), points, None)
}

#[test]
fn squares_holes_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let g = make_map(dir.path());
    let rois = vec![
        // Pixel centres 10..=15 × 10..=13 on the boundary or inside: 6 × 4.
        RoiSpec {
            name: "box".to_owned(),
            contours: vec![closed(square(&g, 1, 10.0, 10.0, 15.0, 13.0))],
        },
        // An 11×11 square with a 3×3 hole (pixel centres 14..=16 inside the
        // inner contour, boundary-inclusive) on slice 0 and the same outer
        // square on slice 2: 121 − 9 + 121.
        RoiSpec {
            name: "ring".to_owned(),
            contours: vec![
                closed(square(&g, 0, 10.0, 10.0, 20.0, 20.0)),
                closed(square(&g, 0, 14.0, 14.0, 16.0, 16.0)),
                closed(square(&g, 2, 10.0, 10.0, 20.0, 20.0)),
            ],
        },
    ];
    let rt = dir.path().join("rt.dcm");
    write_rtstruct(&rt, FRAME_OF_REFERENCE, &rois);
    for map in ["map/T2_map.nii.gz", "map/T2_map_dicom"] {
        let out = dir.path().join(format!("stats-{}", map.len()));
        let report = run_mask_average(&dir.path().join(map), &rt, &out).unwrap();
        assert_eq!(report.matched_by, "geometry");
        assert_eq!(report.quantity, "T2", "{map}");
        let boxed = &report.rois[0];
        assert_eq!(boxed.voxels, 24, "{map}");
        assert!((boxed.area_mm2 - 24.0).abs() < 1e-9);
        let ring = &report.rois[1];
        assert_eq!(ring.voxels, 121 - 9 + 121, "{map}");
        let stats = boxed.stats.as_ref().unwrap();
        assert!((stats.mean - 50.0).abs() < 0.5, "{stats:?}");
        assert_eq!(boxed.sd_ddof, 1);
        let rate = boxed.rate.as_ref().unwrap().stats.as_ref().unwrap();
        assert!((rate.mean - 20.0).abs() < 0.2, "R2 {rate:?}");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("rois.json")).unwrap()).unwrap();
        assert_eq!(json[0]["roi"], "box");
        assert_eq!(json[0]["voxels"], 24);
        let text = std::fs::read_to_string(out.join("statistics.txt")).unwrap();
        assert!(text.contains("XNAT-PIC Pipeline: Mask Average"), "{text}");
        assert!(text.contains("ROI Area: 24.00"), "{text}");
        assert!(text.contains("Mean R2: "), "{text}");
        let csv = std::fs::read_to_string(out.join("rois.csv")).unwrap();
        assert!(
            csv.lines().nth(1).unwrap().starts_with("box,1,24,24,"),
            "{csv}"
        );
        assert!(out.join("T2_map_masked.nii.gz").is_file());
        assert!(out.join("mask_ring.nii.gz").is_file());
        assert!(out.join("T2_map_rois.png").is_file());
    }
}

#[test]
fn partly_outside_open_and_point_contours_warn() {
    let dir = tempfile::tempdir().unwrap();
    let g = make_map(dir.path());
    let rois = vec![
        RoiSpec {
            name: "edge".to_owned(),
            // Columns −5..=3: only 0..=3 are on the image.
            contours: vec![closed(square(&g, 1, -5.0, 5.0, 3.0, 6.0))],
        },
        RoiSpec {
            name: "line".to_owned(),
            contours: vec![
                (
                    "OPEN_PLANAR".to_owned(),
                    square(&g, 1, 5.0, 5.0, 8.0, 8.0),
                    None,
                ),
                ("POINT".to_owned(), vec![at(&g, 1, 5.0, 5.0)], None),
            ],
        },
        RoiSpec {
            name: "between".to_owned(),
            // Slices are 2 mm apart: 1.5 mm above the top slice is on none.
            contours: vec![closed(
                square(&g, 2, 5.0, 5.0, 8.0, 8.0)
                    .into_iter()
                    .map(|p| [p[0], p[1], p[2] + 1.5])
                    .collect(),
            )],
        },
    ];
    let rt = dir.path().join("rt.dcm");
    write_rtstruct(&rt, FRAME_OF_REFERENCE, &rois);
    let report = run_mask_average(
        &dir.path().join("map/T2_map.nii.gz"),
        &rt,
        &dir.path().join("out"),
    )
    .unwrap();
    assert_eq!(report.rois[0].voxels, 4 * 2);
    assert_eq!(report.rois[1].voxels, 0);
    assert_eq!(report.rois[2].voxels, 0);
    let warnings = report.warnings.join("\n");
    assert!(warnings.contains("\"edge\" extends beyond"), "{warnings}");
    assert!(warnings.contains("OPEN_PLANAR"), "{warnings}");
    assert!(warnings.contains("POINT"), "{warnings}");
    assert!(
        warnings.contains("\"between\": 1 contour(s) lie on no slice"),
        "{warnings}"
    );
}

#[test]
fn another_frame_of_reference_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = make_map(dir.path());
    let rt = dir.path().join("rt.dcm");
    write_rtstruct(
        &rt,
        "1.2.3.4.5",
        &[RoiSpec {
            name: "box".to_owned(),
            contours: vec![closed(square(&g, 1, 10.0, 10.0, 15.0, 13.0))],
        }],
    );
    let out = dir.path().join("out");
    let err = run_mask_average(&dir.path().join("map/T2_map_dicom"), &rt, &out).unwrap_err();
    assert!(matches!(err, Error::FrameOfReference { .. }), "{err}");
    assert!(err.to_string().contains("rt.dcm"), "{err}");
    assert!(!out.exists(), "no partial output");
}

#[test]
fn references_to_the_maps_own_images_place_contours() {
    let dir = tempfile::tempdir().unwrap();
    let g = make_map(dir.path());
    // Reference slice 2's image of the map series, with z written for slice 0:
    // a resolved reference wins over the geometry.
    let map = xnatkit_maps::load_map(&dir.path().join("map/T2_map_dicom")).unwrap();
    let sop = map.slice_sops[2][0].clone();
    let rt = dir.path().join("rt.dcm");
    write_rtstruct(
        &rt,
        "1.2.3.4.5",
        &[RoiSpec {
            name: "box".to_owned(),
            contours: vec![(
                "CLOSED_PLANAR".to_owned(),
                square(&g, 0, 10.0, 10.0, 15.0, 13.0),
                Some(sop),
            )],
        }],
    );
    let report = run_mask_average(
        &dir.path().join("map/T2_map_dicom"),
        &rt,
        &dir.path().join("out"),
    )
    .unwrap();
    assert_eq!(report.matched_by, "references");
    assert_eq!(report.rois[0].voxels, 24);
    let (_, mask, _) = crate::support::read_nifti(&dir.path().join("out/mask_box.nii.gz"));
    let n = g.rows * g.cols;
    assert_eq!(
        mask[2 * n..].iter().filter(|v| **v > 0.0).count(),
        24,
        "on slice 2"
    );
}
