//! Geometry: the NIfTI affine and the slice order come from the DICOM
//! geometry (oblique slices, non-square pixels, slices stored in descending
//! order), enhanced multi-frame input gives the same maps as classic files,
//! the DICOM map series carries the geometry and rescale, and reruns are
//! byte-identical.

use std::path::Path;

use xnatkit_maps::{MapKind, Options, run_map};

use crate::support::{Geometry, Image, phantom, read_nifti, write_classic, write_multiframe};

/// Slice s has T2 = 40 + 20·s ms everywhere in the object.
fn slice_coded(g: &Geometry) -> (Vec<f64>, Vec<Image>) {
    let tes: Vec<f64> = (1..=8).map(|k| 12.0 * k as f64).collect();
    let t = tes.clone();
    let images = phantom(
        g,
        &tes,
        0.5,
        5,
        move |_, s, k| 1000.0 * (-t[k] / (40.0 + 20.0 * s as f64)).exp(),
        "te",
    );
    (tes, images)
}

/// Median T2 of each slice of the output (valid voxels).
fn slice_medians(out: &Path, g: &Geometry) -> Vec<f64> {
    let (dims, map, _) = read_nifti(&out.join("T2_map.nii.gz"));
    assert_eq!(dims, [g.cols, g.rows, g.slices]);
    (0..g.slices)
        .map(|s| {
            let mut v: Vec<f64> = map[s * g.rows * g.cols..(s + 1) * g.rows * g.cols]
                .iter()
                .copied()
                .filter(|x| *x > 0.0)
                .collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

/// The expected RAS affine (rows of srow) of geometry `g`.
fn expected_srow(g: &Geometry) -> [[f64; 4]; 3] {
    let o = g.orientation;
    let n = g.normal();
    let p = g.position(0);
    let mut m = [[0.0; 4]; 3];
    for a in 0..3 {
        m[a] = [
            o[a] * g.spacing[1],
            o[3 + a] * g.spacing[0],
            n[a] * g.slice_gap,
            p[a],
        ];
    }
    for row in m.iter_mut().take(2) {
        for v in row.iter_mut() {
            *v = -*v;
        }
    }
    m
}

fn assert_affine(out: &Path, g: &Geometry) {
    let (_, _, srow) = read_nifti(&out.join("T2_map.nii.gz"));
    let want = expected_srow(g);
    for i in 0..3 {
        for j in 0..4 {
            assert!(
                (srow[i][j] as f64 - want[i][j]).abs() < 1e-4,
                "srow[{i}][{j}] = {}, expected {}",
                srow[i][j],
                want[i][j]
            );
        }
    }
}

fn assert_slices(out: &Path, g: &Geometry) {
    let medians = slice_medians(out, g);
    for (s, m) in medians.iter().enumerate() {
        let truth = 40.0 + 20.0 * s as f64;
        assert!(
            (m - truth).abs() < 0.01 * truth,
            "slice {s}: T2 {m}, expected {truth}"
        );
    }
}

#[test]
fn oblique_slices_get_the_oblique_affine() {
    // Rotated 30° about z, then tilted 20° about the new x axis.
    let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
    let (ct, st) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
    let row = [c, s, 0.0];
    let col = [-s * ct, c * ct, st];
    let mut g = Geometry::axial(20, 22, 3);
    g.orientation = [row[0], row[1], row[2], col[0], col[1], col[2]];
    let (_, images) = slice_coded(&g);
    let dir = tempfile::tempdir().unwrap();
    let order: Vec<usize> = (0..images.len()).collect();
    write_classic(&dir.path().join("in"), &g, &images, &order);
    run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("out"),
    )
    .unwrap();
    assert_affine(&dir.path().join("out"), &g);
    assert_slices(&dir.path().join("out"), &g);
}

#[test]
fn non_square_pixels_and_matrix() {
    let mut g = Geometry::axial(18, 28, 2);
    g.spacing = [0.8, 0.5];
    let (_, images) = slice_coded(&g);
    let dir = tempfile::tempdir().unwrap();
    let order: Vec<usize> = (0..images.len()).collect();
    write_classic(&dir.path().join("in"), &g, &images, &order);
    run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("out"),
    )
    .unwrap();
    assert_affine(&dir.path().join("out"), &g);
    assert_slices(&dir.path().join("out"), &g);
}

#[test]
fn slices_stored_in_descending_order_are_sorted_by_position() {
    let g = Geometry::axial(16, 18, 4);
    let (_, images) = slice_coded(&g);
    // Files named from the top slice down, echoes shuffled within a slice.
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(images[k].slice), (k * 7) % 8));
    let dir = tempfile::tempdir().unwrap();
    write_classic(&dir.path().join("in"), &g, &images, &order);
    run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("out"),
    )
    .unwrap();
    assert_affine(&dir.path().join("out"), &g);
    assert_slices(&dir.path().join("out"), &g);
}

#[test]
fn enhanced_multiframe_gives_the_classic_result() {
    let g = Geometry::axial(16, 18, 3);
    let (_, images) = slice_coded(&g);
    let dir = tempfile::tempdir().unwrap();
    let order: Vec<usize> = (0..images.len()).collect();
    write_classic(&dir.path().join("classic"), &g, &images, &order);
    write_multiframe(&dir.path().join("enhanced/MF.dcm"), &g, &images);
    run_map(
        &dir.path().join("classic"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("a"),
    )
    .unwrap();
    run_map(
        &dir.path().join("enhanced"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("b"),
    )
    .unwrap();
    assert_affine(&dir.path().join("b"), &g);
    let (_, a, _) = read_nifti(&dir.path().join("a/T2_map.nii.gz"));
    let (_, b, _) = read_nifti(&dir.path().join("b/T2_map.nii.gz"));
    assert_eq!(a, b, "the same frames give the same map");
}

#[test]
fn dicom_series_of_the_map_and_byte_identical_reruns() {
    let g = Geometry::axial(16, 18, 2);
    let (_, images) = slice_coded(&g);
    let dir = tempfile::tempdir().unwrap();
    let order: Vec<usize> = (0..images.len()).collect();
    write_classic(&dir.path().join("in"), &g, &images, &order);
    let first = run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("a"),
    )
    .unwrap();
    run_map(
        &dir.path().join("in"),
        MapKind::T2,
        Options::default(),
        &dir.path().join("b"),
    )
    .unwrap();
    for file in &first.files {
        let name = file.strip_prefix(dir.path().join("a")).unwrap();
        let a = std::fs::read(file).unwrap();
        let b = std::fs::read(dir.path().join("b").join(name)).unwrap();
        assert!(a == b, "{} differs between runs", name.display());
    }
    // The DICOM map: same study and frame of reference, geometry, rescale.
    let obj = dicom_object::open_file(dir.path().join("a/T2_map_dicom/IM0002.dcm")).unwrap();
    let get = |t| obj.element(t).unwrap().to_str().unwrap().trim().to_owned();
    use dicom_dictionary_std::tags;
    assert_eq!(get(tags::STUDY_INSTANCE_UID), crate::support::STUDY);
    assert_eq!(
        get(tags::FRAME_OF_REFERENCE_UID),
        crate::support::FRAME_OF_REFERENCE
    );
    assert_ne!(get(tags::SERIES_INSTANCE_UID), crate::support::SERIES);
    assert_eq!(get(tags::RESCALE_SLOPE), "0.1");
    assert_eq!(get(tags::RESCALE_TYPE), "ms");
    let ipp = obj
        .element(tags::IMAGE_POSITION_PATIENT)
        .unwrap()
        .to_multi_float64()
        .unwrap();
    let want = g.position(1);
    assert!((0..3).all(|i| (ipp[i] - want[i]).abs() < 1e-6), "{ipp:?}");
    // Stored × slope is the map (slice 2 has T2 = 60 ms).
    let pixels = obj.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap();
    let centre = (g.rows / 2) * g.cols + g.cols / 2;
    let stored = u16::from_le_bytes([pixels[2 * centre], pixels[2 * centre + 1]]);
    assert!((stored as f64 * 0.1 - 60.0).abs() < 0.5, "{stored}");
    // A preview exists and is a PNG.
    let png = std::fs::read(dir.path().join("a/T2_map.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // The map series reads back as a map for mask-average (one image per slice).
    let map = xnatkit_maps::load_map(&dir.path().join("a/T2_map_dicom")).unwrap();
    assert_eq!(map.grid.slices(), 2);
}
