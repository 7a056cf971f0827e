//! The head (or object) mask every metric is computed in, derived from the
//! image alone: voxels of the mean image above Otsu's threshold, the largest
//! 6-connected component of them, and its holes filled (background not
//! connected to the image border becomes head). Axes of length 1 are not
//! borders, so a single slice is filled in-plane.

use std::collections::VecDeque;

/// Bins of the histogram Otsu's threshold is chosen from.
pub const OTSU_BINS: usize = 256;

/// A binary mask over one frame, x fastest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub dims: [usize; 3],
    pub inside: Vec<bool>,
}

impl Mask {
    pub fn count(&self) -> usize {
        self.inside.iter().filter(|&&v| v).count()
    }
}

/// Otsu's threshold of `values` over a histogram of [`OTSU_BINS`] bins
/// spanning their range: the bin centre that maximises the between-class
/// variance of "at or below" versus "above". `None` when all are equal.
pub fn otsu_threshold(values: &[f64]) -> Option<f64> {
    otsu_threshold_of(|visit| visit(values))
}

/// [`otsu_threshold`] of values that are visited rather than held: `pass`
/// hands every value to the callback it is given, in pieces of any size,
/// and is called twice (the range, then the histogram). A parametric map's
/// reference image is read slice by slice this way, without a copy of the
/// whole volume.
pub fn otsu_threshold_of<P>(mut pass: P) -> Option<f64>
where
    P: FnMut(&mut dyn FnMut(&[f64])),
{
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    pass(&mut |piece| {
        for &v in piece {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    });
    otsu_threshold_in(lo, hi, pass)
}

/// [`otsu_threshold_of`] when the values' range is already known (`lo`
/// and `hi`, their smallest and largest): one pass, the histogram's.
pub fn otsu_threshold_in<P>(lo: f64, hi: f64, mut pass: P) -> Option<f64>
where
    P: FnMut(&mut dyn FnMut(&[f64])),
{
    let mut histogram = OtsuHistogram::new(lo, hi)?;
    pass(&mut |piece| histogram.add(piece));
    Some(histogram.threshold())
}

/// The histogram Otsu's threshold is chosen from, over a known range,
/// filled piece by piece: by one pass, or by several threads (one
/// histogram each, [merged](OtsuHistogram::merge); the counts are exact,
/// so the threshold is the same however the values were split).
#[derive(Debug, Clone)]
pub struct OtsuHistogram {
    lo: f64,
    hi: f64,
    width: f64,
    norm: f64,
    /// Four interleaved tallies: runs of equal values (the background)
    /// would otherwise wait on the one counter each value increments.
    tallies: Box<[[u64; OTSU_BINS]; 4]>,
}

impl OtsuHistogram {
    /// An empty histogram from `lo` to `hi`; `None` unless `hi > lo` (also
    /// for NaN).
    pub fn new(lo: f64, hi: f64) -> Option<OtsuHistogram> {
        if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        Some(OtsuHistogram {
            lo,
            hi,
            width: (hi - lo) / OTSU_BINS as f64,
            norm: OTSU_BINS as f64 / (hi - lo),
            tallies: Box::new([[0; OTSU_BINS]; 4]),
        })
    }

    fn edge(&self, i: usize) -> f64 {
        if i == OTSU_BINS {
            self.hi
        } else {
            self.lo + i as f64 * self.width
        }
    }

    /// Binned as numpy's histogram does (so the independent check sees the
    /// same counts): scaled index, the top edge in the last bin, then
    /// nudged by one where rounding put a value across an edge.
    #[inline]
    fn bin_of(&self, v: f64) -> usize {
        let mut bin = (((v - self.lo) * self.norm) as usize).min(OTSU_BINS - 1);
        if v < self.edge(bin) {
            bin -= 1;
        } else if bin + 1 < OTSU_BINS && v >= self.edge(bin + 1) {
            bin += 1;
        }
        bin
    }

    /// Counts `piece` (values in the range).
    pub fn add(&mut self, piece: &[f64]) {
        let mut quads = piece.chunks_exact(4);
        for quad in &mut quads {
            for (k, &v) in quad.iter().enumerate() {
                let bin = self.bin_of(v);
                self.tallies[k][bin] += 1;
            }
        }
        for &v in quads.remainder() {
            let bin = self.bin_of(v);
            self.tallies[0][bin] += 1;
        }
    }

    /// Adds `other`'s counts (a histogram over the same range).
    pub fn merge(&mut self, other: &OtsuHistogram) {
        for (mine, theirs) in self.tallies.iter_mut().zip(other.tallies.iter()) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }

    /// The bin centre that maximises the between-class variance of "at or
    /// below" versus "above".
    pub fn threshold(&self) -> f64 {
        let mut hist = [0f64; OTSU_BINS];
        for (i, h) in hist.iter_mut().enumerate() {
            // Exact: counts stay far below 2⁵³.
            *h = self.tallies.iter().map(|tally| tally[i]).sum::<u64>() as f64;
        }
        let centre = |i: usize| self.lo + self.width * (i as f64 + 0.5);
        let total: f64 = hist.iter().sum();
        let total_moment: f64 = hist.iter().enumerate().map(|(i, h)| h * centre(i)).sum();
        let (mut below, mut below_moment) = (0f64, 0f64);
        let mut best = (f64::NEG_INFINITY, 0usize);
        for (i, &count) in hist.iter().enumerate().take(OTSU_BINS - 1) {
            below += count;
            below_moment += count * centre(i);
            let above = total - below;
            if below == 0.0 || above == 0.0 {
                continue;
            }
            let diff = below_moment / below - (total_moment - below_moment) / above;
            let between = below * above * diff * diff;
            if between > best.0 {
                best = (between, i);
            }
        }
        centre(best.1)
    }
}

/// The head mask of a frame of `dims` (see the module doc); `None` when the
/// image is uniform.
pub fn head_mask(image: &[f64], dims: [usize; 3]) -> Option<(Mask, f64)> {
    let threshold = otsu_threshold(image)?;
    let above: Vec<bool> = image.iter().map(|&v| v > threshold).collect();
    let largest = largest_component(&above, dims)?;
    let filled = fill_holes(&largest, dims);
    Some((
        Mask {
            dims,
            inside: filled,
        },
        threshold,
    ))
}

fn neighbours(index: usize, dims: [usize; 3]) -> impl Iterator<Item = usize> {
    let [nx, ny, nz] = dims;
    let (x, y, z) = (index % nx, (index / nx) % ny, index / (nx * ny));
    let steps: [(bool, isize); 6] = [
        (x > 0, -1),
        (x + 1 < nx, 1),
        (y > 0, -(nx as isize)),
        (y + 1 < ny, nx as isize),
        (z > 0, -((nx * ny) as isize)),
        (z + 1 < nz, (nx * ny) as isize),
    ];
    steps
        .into_iter()
        .filter(|(ok, _)| *ok)
        .map(move |(_, step)| index.wrapping_add_signed(step))
}

/// The largest 6-connected component of `set` (the first found on a tie).
fn largest_component(set: &[bool], dims: [usize; 3]) -> Option<Vec<bool>> {
    let mut label = vec![0u32; set.len()];
    let mut sizes = vec![0usize];
    let mut queue = VecDeque::new();
    for start in 0..set.len() {
        if !set[start] || label[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        sizes.push(0);
        label[start] = id;
        queue.push_back(start);
        while let Some(i) = queue.pop_front() {
            sizes[id as usize] += 1;
            for n in neighbours(i, dims) {
                if set[n] && label[n] == 0 {
                    label[n] = id;
                    queue.push_back(n);
                }
            }
        }
    }
    let (best, &size) = sizes
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
    (size > 0).then(|| label.iter().map(|&l| l as usize == best).collect())
}

/// `set` with every background region that does not reach the border
/// (along axes longer than 1) turned into foreground.
fn fill_holes(set: &[bool], dims: [usize; 3]) -> Vec<bool> {
    let [nx, ny, nz] = dims;
    let on_border = |i: usize| {
        let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny));
        (nx > 1 && (x == 0 || x + 1 == nx))
            || (ny > 1 && (y == 0 || y + 1 == ny))
            || (nz > 1 && (z == 0 || z + 1 == nz))
    };
    let mut outside = vec![false; set.len()];
    let mut queue: VecDeque<usize> = (0..set.len())
        .filter(|&i| !set[i] && on_border(i))
        .collect();
    for &i in &queue {
        outside[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for n in neighbours(i, dims) {
            if !set[n] && !outside[n] {
                outside[n] = true;
                queue.push_back(n);
            }
        }
    }
    outside.iter().map(|&o| !o).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_levels() {
        let mut values = vec![10.0; 100];
        values.extend(vec![200.0; 50]);
        let t = otsu_threshold(&values).unwrap();
        assert!(t > 10.0 && t < 200.0, "{t}");
        assert!(otsu_threshold(&[3.0; 10]).is_none());
    }

    #[test]
    fn histograms_merged_from_pieces_give_the_same_threshold() {
        // Deterministic, uneven values: a dark background and two levels.
        let values: Vec<f64> = (0..10_007u64)
            .map(|i| {
                let jitter = ((i * 2_654_435_761) % 1000) as f64 / 100.0;
                match i % 7 {
                    0..=3 => jitter,
                    4 | 5 => 300.0 + jitter,
                    _ => 700.0 + 3.0 * jitter,
                }
            })
            .collect();
        let (lo, hi) = (0.0, 730.0);
        let whole = otsu_threshold_in(lo, hi, |visit| visit(&values)).unwrap();
        // Pieces of every size, in two histograms, merged.
        let mut first = OtsuHistogram::new(lo, hi).unwrap();
        let mut second = first.clone();
        let (a, b) = values.split_at(4_001);
        for piece in a.chunks(3) {
            first.add(piece);
        }
        for piece in b.chunks(1_000) {
            second.add(piece);
        }
        first.merge(&second);
        assert_eq!(first.threshold().to_bits(), whole.to_bits());
        assert!(whole > 5.0 && whole < 300.0, "{whole}");
        assert!(OtsuHistogram::new(5.0, 5.0).is_none());
        assert!(OtsuHistogram::new(f64::NAN, 5.0).is_none());
    }

    #[test]
    fn mask_keeps_the_largest_blob_and_fills_its_hole() {
        // 9×9×9: a 5×5×5 cube with an empty centre, and a bright speck in
        // a corner.
        let dims = [9, 9, 9];
        let at = |x: usize, y: usize, z: usize| x + 9 * (y + 9 * z);
        let mut image = vec![0.0; 9 * 9 * 9];
        for z in 2..7 {
            for y in 2..7 {
                for x in 2..7 {
                    image[at(x, y, z)] = 100.0;
                }
            }
        }
        image[at(4, 4, 4)] = 0.0;
        image[at(8, 8, 8)] = 100.0;
        let (mask, _) = head_mask(&image, dims).unwrap();
        assert!(mask.inside[at(4, 4, 4)], "the hole is filled");
        assert!(!mask.inside[at(8, 8, 8)], "the speck is dropped");
        assert_eq!(mask.count(), 125);
    }

    #[test]
    fn a_single_slice_is_filled_in_plane() {
        let dims = [5, 5, 1];
        let mut image = vec![0.0; 25];
        for y in 1..4 {
            for x in 1..4 {
                if !(x == 2 && y == 2) {
                    image[x + 5 * y] = 50.0;
                }
            }
        }
        let (mask, _) = head_mask(&image, dims).unwrap();
        assert_eq!(mask.count(), 9);
    }
}
