//! Where each voxel lies in patient coordinates (DICOM LPS, mm): the map grid
//! every output shares, its NIfTI affine (RAS, as NIfTI wants) and the
//! mapping of patient points to continuous pixel indices that the ROI
//! rasteriser needs. Slices are ordered by their position along the normal,
//! never by file order.

pub type Vec3 = [f64; 3];

pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn add_scaled(a: Vec3, b: Vec3, s: f64) -> Vec3 {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}

pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

pub fn normalised(a: Vec3) -> Vec3 {
    let n = norm(a);
    if n > 0.0 {
        [a[0] / n, a[1] / n, a[2] / n]
    } else {
        a
    }
}

/// A stack of parallel 2-D slices. Voxel `(col, row, slice)` is at
/// `positions[slice] + col·Δcol·row_dir + row·Δrow·col_dir`; data arrays
/// are `col + cols·(row + rows·slice)` (NIfTI's x fastest).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub rows: usize,
    pub cols: usize,
    /// Direction of increasing column index (ImageOrientationPatient[0..3]).
    pub row_dir: Vec3,
    /// Direction of increasing row index (ImageOrientationPatient[3..6]).
    pub col_dir: Vec3,
    /// `row_dir × col_dir`; slices are sorted ascending along it.
    pub normal: Vec3,
    /// `[between rows, between columns]` in mm (PixelSpacing order).
    pub spacing: [f64; 2],
    /// ImagePositionPatient (centre of the first pixel) of each slice.
    pub positions: Vec<Vec3>,
    /// SliceThickness when the headers give it.
    pub thickness: Option<f64>,
    pub frame_of_reference: Option<String>,
}

impl Grid {
    pub fn slices(&self) -> usize {
        self.positions.len()
    }

    pub fn slice_len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn len(&self) -> usize {
        self.slice_len() * self.slices()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distance between neighbouring slice planes (mean step); for a single
    /// slice the thickness, else the in-plane spacing.
    pub fn slice_spacing(&self) -> f64 {
        let n = self.slices();
        if n > 1 {
            let first = dot(self.positions[0], self.normal);
            let last = dot(self.positions[n - 1], self.normal);
            ((last - first) / (n - 1) as f64).abs()
        } else {
            self.thickness
                .filter(|t| *t > 0.0)
                .unwrap_or(self.spacing[0].min(self.spacing[1]))
        }
    }

    /// The step from slice k to k+1 in patient coordinates.
    pub fn slice_step(&self) -> Vec3 {
        let n = self.slices();
        if n > 1 {
            let d = sub(self.positions[n - 1], self.positions[0]);
            [
                d[0] / (n - 1) as f64,
                d[1] / (n - 1) as f64,
                d[2] / (n - 1) as f64,
            ]
        } else {
            let s = self.slice_spacing();
            [self.normal[0] * s, self.normal[1] * s, self.normal[2] * s]
        }
    }

    /// Voxel index (col, row, slice) → patient LPS, as a 4×4 row-major matrix.
    pub fn affine_lps(&self) -> [[f64; 4]; 4] {
        let step = self.slice_step();
        let o = self.positions.first().copied().unwrap_or([0.0; 3]);
        let mut m = [[0.0; 4]; 4];
        for axis in 0..3 {
            m[axis][0] = self.row_dir[axis] * self.spacing[1];
            m[axis][1] = self.col_dir[axis] * self.spacing[0];
            m[axis][2] = step[axis];
            m[axis][3] = o[axis];
        }
        m[3][3] = 1.0;
        m
    }

    /// The NIfTI affine: LPS → RAS negates the first two patient axes.
    pub fn affine_ras(&self) -> [[f64; 4]; 4] {
        let mut m = self.affine_lps();
        for row in m.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
        m
    }

    /// Signed distance of patient point `p` from the plane of `slice`.
    pub fn distance_to_plane(&self, slice: usize, p: Vec3) -> f64 {
        dot(sub(p, self.positions[slice]), self.normal)
    }

    /// Continuous `(col, row)` of `p` projected on the plane of `slice`;
    /// pixel centres sit at integers.
    pub fn to_pixel(&self, slice: usize, p: Vec3) -> (f64, f64) {
        let d = sub(p, self.positions[slice]);
        (
            dot(d, self.row_dir) / self.spacing[1],
            dot(d, self.col_dir) / self.spacing[0],
        )
    }

    /// Builds a grid from an affine in LPS (voxel → patient) with `dims`.
    pub fn from_affine_lps(m: [[f64; 4]; 4], dims: [usize; 3], frame: Option<String>) -> Self {
        let column = |c: usize| [m[0][c], m[1][c], m[2][c]];
        let (x, y, z) = (column(0), column(1), column(2));
        let row_dir = normalised(x);
        let col_dir = normalised(y);
        let normal = normalised(cross(row_dir, col_dir));
        let origin = column(3);
        let positions = (0..dims[2])
            .map(|k| add_scaled(origin, z, k as f64))
            .collect();
        let thickness = norm(z);
        Self {
            rows: dims[1],
            cols: dims[0],
            row_dir,
            col_dir,
            normal,
            spacing: [norm(y), norm(x)],
            positions,
            thickness: (thickness > 0.0).then_some(thickness),
            frame_of_reference: frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_round_trips_through_from_affine() {
        let grid = Grid {
            rows: 4,
            cols: 3,
            row_dir: [1.0, 0.0, 0.0],
            col_dir: [0.0, 1.0, 0.0],
            normal: [0.0, 0.0, 1.0],
            spacing: [2.0, 0.5],
            positions: vec![[1.0, 2.0, 3.0], [1.0, 2.0, 5.0]],
            thickness: Some(2.0),
            frame_of_reference: None,
        };
        let back = Grid::from_affine_lps(grid.affine_lps(), [3, 4, 2], None);
        assert_eq!(back.positions, grid.positions);
        assert_eq!(back.spacing, grid.spacing);
        let ras = grid.affine_ras();
        assert_eq!(ras[0][3], -1.0);
        assert_eq!(ras[1][3], -2.0);
        assert_eq!(ras[2][3], 3.0);
    }
}
