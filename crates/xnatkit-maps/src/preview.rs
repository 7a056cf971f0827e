//! A PNG preview of a map: up to nine slices (three per row, each slice
//! with anterior/head up as stored: row 0 at the top), a perceptual colour
//! map over the 1st–99th percentile of the valid values (black = no fit),
//! a colour bar with its range and unit written in a tiny bitmap font, and
//! ROI outlines when mask statistics are drawn.

use crate::Error;
use crate::dicom_out::FillSlice;
use std::io::Write as _;

const MAX_TILES: usize = 9;
const TARGET_TILE_WIDTH: usize = 160;
const BAR_WIDTH: usize = 16;
const LABEL_WIDTH: usize = 64;

/// Viridis at eight stops (linear interpolation between them).
const STOPS: [[f64; 3]; 8] = [
    [68.0, 1.0, 84.0],
    [70.0, 50.0, 126.0],
    [54.0, 92.0, 141.0],
    [39.0, 127.0, 142.0],
    [31.0, 161.0, 135.0],
    [74.0, 193.0, 109.0],
    [160.0, 218.0, 57.0],
    [253.0, 231.0, 37.0],
];

fn colour(f: f64) -> [u8; 3] {
    let f = f.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (f.floor() as usize).min(STOPS.len() - 2);
    let w = f - k as f64;
    let mut out = [0u8; 3];
    for (c, o) in out.iter_mut().enumerate() {
        *o = (STOPS[k][c] * (1.0 - w) + STOPS[k + 1][c] * w).round() as u8;
    }
    out
}

/// 3×5 glyphs, rows top to bottom, 3 bits each (MSB left).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        'e' => [0, 7, 7, 4, 7],
        'm' => [0, 0, 7, 7, 5],
        's' => [0, 3, 6, 1, 6],
        '/' => [1, 1, 2, 4, 4],
        _ => [0, 0, 0, 0, 0],
    }
}

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let at = (y * self.width + x) * 3;
            self.rgb[at..at + 3].copy_from_slice(&c);
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str) {
        const SCALE: usize = 2;
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        for dy in 0..SCALE {
                            for dx in 0..SCALE {
                                self.set(
                                    x + (k * 4 + col) * SCALE + dx,
                                    y + row * SCALE + dy,
                                    [255, 255, 255],
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v.abs() >= 0.01 && v.abs() < 10000.0 {
        let digits = if v.abs() >= 100.0 {
            0
        } else if v.abs() >= 1.0 {
            1
        } else {
            3
        };
        format!("{v:.digits$}")
    } else {
        format!("{v:.1e}")
    }
}

fn chosen_slices(nz: usize) -> Vec<usize> {
    if nz <= MAX_TILES {
        return (0..nz).collect();
    }
    (0..MAX_TILES)
        .map(|k| ((k as f64 / (MAX_TILES - 1) as f64) * (nz - 1) as f64).round() as usize)
        .collect()
}

/// The display range: 1st–99th percentile of the positive finite values.
pub fn range(values: &[f32]) -> (f64, f64) {
    range_of(|visit| values.iter().for_each(|&v| visit(v)))
}

/// [`range`] of values visited rather than held: `pass` hands every value
/// to the callback it is given, and is called twice.
///
/// Exact, in two passes and 768 KiB of counts whatever the count: a copy
/// of a whole map to select in was the largest allocation left when the
/// preview was drawn. Positive finite floats order as their bit patterns
/// do, so a histogram of the upper 16 bits finds each percentile's bucket
/// and one of the lower 16 bits inside that bucket finds the value.
fn range_of(mut pass: impl FnMut(&mut dyn FnMut(f32))) -> (f64, f64) {
    let positive = |x: f32| x.is_finite() && x > 0.0;
    let mut upper = vec![0u32; 1 << 16];
    pass(&mut |v| {
        if positive(v) {
            upper[(v.to_bits() >> 16) as usize] += 1;
        }
    });
    let count: usize = upper.iter().map(|&n| n as usize).sum();
    if count == 0 {
        return (0.0, 1.0);
    }
    let index = |p: f64| ((count - 1) as f64 * p).round() as usize;
    // For each rank: its bucket and its rank inside the bucket.
    let locate = |rank: usize| {
        let mut below = 0usize;
        for (bucket, &n) in upper.iter().enumerate() {
            if below + n as usize > rank {
                return (bucket as u32, rank - below);
            }
            below += n as usize;
        }
        // Unreachable for a rank below the count: the last bucket then.
        (u32::from(u16::MAX), 0)
    };
    let targets = [index(0.01), index(0.99)].map(locate);
    let mut lower = [vec![0u32; 1 << 16], vec![0u32; 1 << 16]];
    pass(&mut |v| {
        if !positive(v) {
            return;
        }
        let bits = v.to_bits();
        for (k, &(bucket, _)) in targets.iter().enumerate() {
            if bits >> 16 == bucket {
                lower[k][(bits & 0xffff) as usize] += 1;
            }
        }
    });
    let mut found = [0f32; 2];
    for (k, &(bucket, mut rank)) in targets.iter().enumerate() {
        for (low_bits, &n) in lower[k].iter().enumerate() {
            if (n as usize) > rank {
                found[k] = f32::from_bits((bucket << 16) | low_bits as u32);
                break;
            }
            rank -= n as usize;
        }
    }
    let (lo, hi) = (found[0] as f64, found[1] as f64);
    if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
}

/// PNG bytes of `data` (`cols × rows × slices`, x fastest). `labels`, when
/// given, is a ROI label per voxel (0 = none) whose outlines are drawn.
pub fn render(
    data: &[f32],
    dims: [usize; 3],
    unit: &str,
    labels: Option<&[u16]>,
) -> Result<Vec<u8>, Error> {
    let slice_len = dims[0] * dims[1];
    let copy = |s: usize, out: &mut [f32]| {
        out.copy_from_slice(&data[s * slice_len..(s + 1) * slice_len]);
        Ok(())
    };
    render_slices(dims, &copy, unit, labels)
}

/// [`render`] of an image read a slice at a time from `slice`: two passes
/// for the range, then the slices shown.
pub fn render_slices(
    dims: [usize; 3],
    slice: &FillSlice<'_>,
    unit: &str,
    labels: Option<&[u16]>,
) -> Result<Vec<u8>, Error> {
    let picture = draw_slices(dims, slice, unit, labels)?;
    let mut out = Vec::new();
    picture.write_png(&mut out).map_err(|e| Error::Encode {
        what: "PNG preview".to_owned(),
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// A drawn preview, to be written as PNG.
pub struct Picture {
    canvas: Canvas,
}

impl Picture {
    /// The PNG, compressed and written a row at a time (no second copy of
    /// the image, filtered or compressed, is held).
    pub fn write_png(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let Canvas { width, height, rgb } = &self.canvas;
        let mut encoder = png::Encoder::new(out, *width as u32, *height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        let mut stream = writer
            .stream_writer_with_size(PNG_CHUNK)
            .map_err(std::io::Error::other)?;
        stream.write_all(rgb)?;
        stream.finish().map_err(std::io::Error::other)
    }
}

/// Bytes of compressed image data a PNG chunk holds (the stream writer's
/// buffer).
const PNG_CHUNK: usize = 64 * 1024;

/// The preview of an image read a slice at a time from `slice`: two passes
/// for the range, then the slices shown.
pub fn draw_slices(
    dims: [usize; 3],
    slice: &FillSlice<'_>,
    unit: &str,
    labels: Option<&[u16]>,
) -> Result<Picture, Error> {
    let [nx, ny, nz] = dims;
    let mut plane = vec![0f32; nx * ny];
    let mut failed = None;
    let (lo, hi) = range_of(|visit| {
        for s in 0..nz {
            if failed.is_some() {
                return;
            }
            match slice(s, &mut plane) {
                Ok(()) => plane.iter().for_each(|&v| visit(v)),
                Err(e) => failed = Some(e),
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let slices = chosen_slices(nz);
    let per_row = slices.len().clamp(1, 3);
    let tile_rows = slices.len().div_ceil(3).max(1);
    let zoom = (TARGET_TILE_WIDTH / nx.max(1)).max(1);
    let (tile_w, tile_h) = (nx * zoom, ny * zoom);
    let map_w = per_row * tile_w;
    let width = map_w + 8 + BAR_WIDTH + 4 + LABEL_WIDTH;
    let height = (tile_rows * tile_h).max(80);
    let mut canvas = Canvas {
        width,
        height,
        rgb: vec![0u8; width * height * 3],
    };
    for (k, &z) in slices.iter().enumerate() {
        let (ox, oy) = ((k % 3) * tile_w, (k / 3) * tile_h);
        slice(z, &mut plane)?;
        for y in 0..ny {
            for x in 0..nx {
                let i = x + nx * (y + ny * z);
                let v = plane[x + nx * y] as f64;
                let mut pixel = if v.is_finite() && v > 0.0 {
                    colour((v - lo) / (hi - lo))
                } else {
                    [0, 0, 0]
                };
                if let Some(labels) = labels
                    && labels[i] != 0
                {
                    let l = labels[i];
                    let at = |x: usize, y: usize| labels[x + nx * (y + ny * z)];
                    let edge = x == 0
                        || y == 0
                        || x + 1 == nx
                        || y + 1 == ny
                        || at(x - 1, y) != l
                        || at(x + 1, y) != l
                        || at(x, y - 1) != l
                        || at(x, y + 1) != l;
                    if edge {
                        pixel = [255, 40, 40];
                    }
                }
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        canvas.set(ox + x * zoom + dx, oy + y * zoom + dy, pixel);
                    }
                }
            }
        }
    }
    let bar_x = map_w + 8;
    let (bar_top, bar_bottom) = (12, height.saturating_sub(12).max(13));
    for y in bar_top..bar_bottom {
        let f = 1.0 - (y - bar_top) as f64 / (bar_bottom - bar_top - 1).max(1) as f64;
        let c = colour(f);
        for x in bar_x..bar_x + BAR_WIDTH {
            canvas.set(x, y, c);
        }
    }
    let text_x = bar_x + BAR_WIDTH + 4;
    canvas.text(text_x, bar_top, &label(hi));
    canvas.text(
        text_x,
        (bar_top + bar_bottom) / 2 - 5,
        &label((lo + hi) / 2.0),
    );
    canvas.text(text_x, bar_bottom - 10, &label(lo));
    canvas.text(bar_x, 0, unit);
    Ok(Picture { canvas })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The percentiles by sorting every value, as before.
    fn range_by_sorting(values: &[f32]) -> (f64, f64) {
        let mut v: Vec<f32> = values
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        if v.is_empty() {
            return (0.0, 1.0);
        }
        v.sort_by(f32::total_cmp);
        let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64;
        let (lo, hi) = (at(0.01), at(0.99));
        if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
    }

    #[test]
    fn range_by_selection_equals_range_by_sorting() {
        let mut state = 12345u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state
        };
        for n in [0, 1, 2, 3, 99, 100, 101, 1000, 54_321] {
            let values: Vec<f32> = (0..n)
                .map(|_| match next() % 7 {
                    0 => 0.0,
                    1 => f32::NAN,
                    2 => -1.5,
                    3 => (next() % 5) as f32,
                    // Any float at all, subnormal to huge (and infinities).
                    4 => f32::from_bits(next()),
                    _ => (next() % 100_000) as f32 * 0.37,
                })
                .collect();
            assert_eq!(range(&values), range_by_sorting(&values), "{n} values");
        }
    }
}
