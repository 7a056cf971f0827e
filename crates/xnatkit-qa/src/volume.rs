//! A NIfTI image in memory: voxels as `f64` with the header's scaling
//! applied, x fastest, then y, z and time. `f64` rather than `f32`: scaled
//! integer data (slope and intercept) rounded to `f32` moves small
//! differences such as a drift of 0.01 % by parts in 10⁵.

use std::path::Path;

use nifti::{IntoNdArray, NiftiObject, ReaderOptions};

use crate::Error;

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// `[x, y, z, t]`; `t` is 1 for a 3-D image.
    pub dims: [usize; 4],
    /// Voxel size in mm (`pixdim[1..=3]`).
    pub voxel_mm: [f32; 3],
    /// `x + nx * (y + ny * (z + nz * t))`.
    pub data: Vec<f64>,
}

impl Volume {
    /// Reads a `.nii` or `.nii.gz` file. 2-D images count as one slice;
    /// images of more than four dimensions are refused.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let nifti_err = |e: nifti::NiftiError| Error::Nifti {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let object = ReaderOptions::new().read_file(path).map_err(nifti_err)?;
        let pixdim = object.header().pixdim;
        let array = object
            .into_volume()
            .into_ndarray::<f64>()
            .map_err(nifti_err)?;
        let shape = array.shape().to_vec();
        if shape.is_empty() || shape.len() > 4 {
            return Err(Error::Shape {
                path: path.to_owned(),
                reason: format!(
                    "a {}-dimensional image; QA needs 2, 3 or 4 dimensions",
                    shape.len()
                ),
            });
        }
        let mut dims = [1usize; 4];
        dims[..shape.len()].copy_from_slice(&shape);
        // Reversing the axes makes the logical iteration order x-fastest,
        // whatever the array's memory order.
        let data: Vec<f64> = array.t().iter().copied().collect();
        let voxel_mm = [pixdim[1].abs(), pixdim[2].abs(), pixdim[3].abs()];
        Ok(Self {
            dims,
            voxel_mm,
            data,
        })
    }

    pub fn from_parts(dims: [usize; 4], voxel_mm: [f32; 3], data: Vec<f64>) -> Self {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        Self {
            dims,
            voxel_mm,
            data,
        }
    }

    /// Voxels in one 3-D frame.
    pub fn frame_len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    pub fn frames(&self) -> usize {
        self.dims[3]
    }

    pub fn frame(&self, t: usize) -> &[f64] {
        let n = self.frame_len();
        &self.data[t * n..(t + 1) * n]
    }

    /// The mean over time (the image itself for 3-D), in `f64`.
    pub fn mean_image(&self) -> Vec<f64> {
        let n = self.frame_len();
        let frames = self.frames();
        let mut sum = vec![0f64; n];
        for t in 0..frames {
            for (s, &v) in sum.iter_mut().zip(self.frame(t)) {
                *s += v;
            }
        }
        let scale = 1.0 / frames as f64;
        sum.iter_mut().for_each(|s| *s *= scale);
        sum
    }
}
