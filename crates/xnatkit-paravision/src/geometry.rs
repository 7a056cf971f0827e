//! Where each stored image lies: the stored shape of a frame after
//! `VisuCoreTransposition`, the position of each plane of a 3-D frame
//! (honouring `VisuCoreDiskSliceOrder`), and the slice packages of a 2-D
//! multi-slice scan.
//!
//! Model (ParaVision parameter manual, as summarised in brukerapi's
//! specification §7.2–7.3): `VisuCoreSize`/`VisuCoreExtent` are given in
//! acquisition order; a frame whose `VisuCoreTransposition` is non-zero is
//! stored with two of those dimensions exchanged, while `VisuCoreOrientation`
//! and `VisuCorePosition` describe the data as stored (rows of the matrix =
//! directions of increasing stored x, y, z).

use crate::visu::Visu;

/// The stored shape of one frame and the spacing along each stored axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameLayout {
    /// Pixels along stored x (DICOM Columns).
    pub columns: usize,
    /// Pixels along stored y (DICOM Rows).
    pub rows: usize,
    /// Planes along stored z (1 for 2-D frames).
    pub planes: usize,
    /// mm between the centres of adjacent columns.
    pub column_spacing: f64,
    /// mm between the centres of adjacent rows.
    pub row_spacing: f64,
    /// mm between adjacent planes of a 3-D frame.
    pub plane_step: Option<f64>,
    /// The first two stored axes are exchanged relative to `VisuCoreSize`.
    pub in_plane_transposed: bool,
}

impl FrameLayout {
    pub fn plane_pixels(&self) -> usize {
        self.columns * self.rows
    }
}

/// A run of consecutive slices along FG_SLICE acquired with one orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlicePackage {
    pub first_slice: usize,
    pub slices: usize,
}

impl Visu {
    /// `VisuCoreTransposition` of a frame (0 when absent).
    pub fn transposition(&self, frame: usize) -> usize {
        self.number_for_frame("VisuCoreTransposition", frame)
            .filter(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0)
            .map_or(0, |v| v as usize)
    }

    /// The two dimensions a transposition value exchanges: `n < dim`
    /// exchanges `n-1` and `n`, `n == dim` exchanges the first and the last.
    fn exchanged_axes(&self, frame: usize) -> Option<(usize, usize)> {
        match self.transposition(frame) {
            0 => None,
            n if n < self.dim => Some((n - 1, n)),
            n if n == self.dim => Some((0, self.dim - 1)),
            _ => None,
        }
    }

    /// The frame's stored shape and spacings.
    pub fn layout(&self, frame: usize) -> FrameLayout {
        let mut size = [self.size[0], self.size[1], self.planes_per_frame()];
        let mut extent = [
            self.extent[0],
            self.extent[1],
            self.extent.get(2).copied().unwrap_or(0.0),
        ];
        let swapped = self.exchanged_axes(frame);
        if let Some((a, b)) = swapped {
            size.swap(a, b);
            extent.swap(a, b);
        }
        FrameLayout {
            columns: size[0],
            rows: size[1],
            planes: size[2],
            column_spacing: extent[0] / size[0] as f64,
            row_spacing: extent[1] / size[1] as f64,
            plane_step: (self.dim == 3).then(|| extent[2] / size[2] as f64),
            in_plane_transposed: swapped == Some((0, 1)),
        }
    }

    /// `VisuCoreDiskSliceOrder = disk_reverse_slice_order`.
    pub fn disk_reverse(&self) -> bool {
        self.params.str("VisuCoreDiskSliceOrder") == Some("disk_reverse_slice_order")
    }

    /// Distance (mm) along the frame normal from `VisuCorePosition` to a
    /// stored plane. With reverse disk order the planes are stored last
    /// first, and `VisuCorePosition` is the first voxel of the last stored
    /// plane, so stored plane k lies (planes − 1 − k) steps along the normal.
    pub fn plane_offset(&self, layout: &FrameLayout, plane: usize) -> f64 {
        let Some(step) = layout.plane_step else {
            return 0.0;
        };
        let index = if self.disk_reverse() {
            layout.planes.saturating_sub(1 + plane)
        } else {
            plane
        };
        step * index as f64
    }

    /// Index of a frame along FG_SLICE (0 without that group).
    pub fn slice_index(&self, frame: usize) -> usize {
        self.group_position("FG_SLICE")
            .map_or(0, |g| self.group_indices(frame)[g])
    }

    /// The slice packages: from `VisuCoreSlicePacksSlices` (its second field
    /// is the number of slices) when it adds up, else runs of slices with
    /// the same `VisuCoreOrientation` (PV5.1 has no slice-package parameters).
    pub fn slice_packages(&self) -> Vec<SlicePackage> {
        let Some(group) = self.group_position("FG_SLICE") else {
            return vec![SlicePackage {
                first_slice: 0,
                slices: 1,
            }];
        };
        let total = self.groups[group].len;
        if let Some(packages) = self.declared_packages(total) {
            return packages;
        }
        // The first frame with slice index s: every other group at index 0.
        let stride: usize = self.groups[..group].iter().map(|g| g.len).product();
        let orientation = |slice: usize| {
            self.numbers_for_frame("VisuCoreOrientation", 9, slice * stride)
                .unwrap_or_default()
        };
        let mut packages: Vec<SlicePackage> = Vec::new();
        let mut previous: Vec<f64> = Vec::new();
        for slice in 0..total {
            let current = orientation(slice);
            let same = !packages.is_empty()
                && current.len() == previous.len()
                && current
                    .iter()
                    .zip(&previous)
                    .all(|(a, b)| (a - b).abs() < 1e-6);
            match packages.last_mut() {
                Some(package) if same => package.slices += 1,
                _ => packages.push(SlicePackage {
                    first_slice: slice,
                    slices: 1,
                }),
            }
            previous = current;
        }
        packages
    }

    fn declared_packages(&self, total: usize) -> Option<Vec<SlicePackage>> {
        let value = self.params.get("VisuCoreSlicePacksSlices")?;
        let counts: Vec<usize> = value
            .elements()
            .iter()
            .map(|entry| {
                let count = entry.fields()?.get(1)?.as_f64()?;
                (count >= 1.0 && count.fract() == 0.0).then_some(count as usize)
            })
            .collect::<Option<_>>()?;
        if counts.is_empty() || counts.iter().sum::<usize>() != total {
            return None;
        }
        let mut first_slice = 0;
        Some(
            counts
                .into_iter()
                .map(|slices| {
                    let package = SlicePackage {
                        first_slice,
                        slices,
                    };
                    first_slice += slices;
                    package
                })
                .collect(),
        )
    }

    /// Which package a frame belongs to.
    pub fn package_of(&self, packages: &[SlicePackage], frame: usize) -> usize {
        let slice = self.slice_index(frame);
        packages
            .iter()
            .position(|p| (p.first_slice..p.first_slice + p.slices).contains(&slice))
            .unwrap_or(0)
    }

    /// Centre-to-centre distance of the slices of a 2-D package:
    /// `VisuCoreSlicePacksSliceDist` for that package, else the projected
    /// distance between its first two slice positions.
    pub fn package_slice_distance(&self, packages: &[SlicePackage], package: usize) -> Option<f64> {
        if let Some(distances) = self.params.f64s("VisuCoreSlicePacksSliceDist") {
            let distance = if distances.len() == packages.len() {
                distances.get(package).copied()
            } else if distances.len() == 1 {
                distances.first().copied()
            } else {
                None
            };
            if let Some(d) = distance.filter(|d| d.is_finite() && *d > 0.0) {
                return Some(d);
            }
        }
        let info = packages.get(package)?;
        if info.slices < 2 {
            return None;
        }
        let group = self.group_position("FG_SLICE")?;
        let stride: usize = self.groups[..group].iter().map(|g| g.len).product();
        let frame = |slice: usize| slice * stride;
        let first = self.numbers_for_frame("VisuCorePosition", 3, frame(info.first_slice))?;
        let second = self.numbers_for_frame("VisuCorePosition", 3, frame(info.first_slice + 1))?;
        let orientation =
            self.numbers_for_frame("VisuCoreOrientation", 9, frame(info.first_slice))?;
        let distance = (0..3)
            .map(|i| (second[i] - first[i]) * orientation[6 + i])
            .sum::<f64>()
            .abs();
        (distance > 0.0).then_some(distance)
    }
}
