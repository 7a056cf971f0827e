//! A PNG of up to nine axial slices around the middle of the (mean) image,
//! grey values windowed to the 1st–99th percentile, with the head mask's
//! outline in red. Anterior/superior up: rows are drawn from the highest y.

use crate::Mask;

/// Slices shown at most, in a grid of three columns.
const MAX_TILES: usize = 9;
/// Small matrices are enlarged (nearest neighbour) to about this width.
const TARGET_TILE_WIDTH: usize = 192;

/// The montage of `image` (one frame, x fastest) with `mask`'s outline, as
/// PNG bytes.
pub fn montage_png(image: &[f64], mask: &Mask) -> Result<Vec<u8>, png::EncodingError> {
    let [nx, ny, nz] = mask.dims;
    let slices = chosen_slices(nz);
    let cols = slices.len().min(3);
    let rows = slices.len().div_ceil(3);
    let zoom = (TARGET_TILE_WIDTH / nx.max(1)).max(1);
    let (tile_w, tile_h) = (nx * zoom, ny * zoom);
    let (width, height) = (cols * tile_w, rows * tile_h);
    let (lo, hi) = window(image);
    let mut rgb = vec![0u8; width * height * 3];
    for (k, &z) in slices.iter().enumerate() {
        let (ox, oy) = ((k % 3) * tile_w, (k / 3) * tile_h);
        for y in 0..ny {
            for x in 0..nx {
                let i = x + nx * (y + ny * z);
                let pixel = if is_edge(mask, x, y, z) {
                    [230, 40, 40]
                } else {
                    let g = (((image[i] - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8;
                    [g, g, g]
                };
                let row0 = oy + (ny - 1 - y) * zoom;
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        let at = ((row0 + dy) * width + ox + x * zoom + dx) * 3;
                        rgb[at..at + 3].copy_from_slice(&pixel);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&rgb)?;
    }
    Ok(out)
}

/// Every slice of a short stack, else nine spread over its middle 80 %.
fn chosen_slices(nz: usize) -> Vec<usize> {
    if nz <= MAX_TILES {
        return (0..nz).collect();
    }
    (0..MAX_TILES)
        .map(|k| {
            let f = 0.1 + 0.8 * k as f64 / (MAX_TILES - 1) as f64;
            ((f * (nz - 1) as f64).round() as usize).min(nz - 1)
        })
        .collect()
}

/// The 1st and 99th percentiles (a flat image gets a unit window).
fn window(image: &[f64]) -> (f64, f64) {
    let mut sorted: Vec<f64> = image.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (at(0.01), at(0.99));
    if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
}

/// In the mask with an in-plane neighbour outside it (or at the edge).
fn is_edge(mask: &Mask, x: usize, y: usize, z: usize) -> bool {
    let [nx, ny, _] = mask.dims;
    let at = |x: usize, y: usize| mask.inside[x + nx * (y + ny * z)];
    at(x, y)
        && (x == 0
            || y == 0
            || x + 1 == nx
            || y + 1 == ny
            || !at(x - 1, y)
            || !at(x + 1, y)
            || !at(x, y - 1)
            || !at(x, y + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_spread_over_the_middle() {
        assert_eq!(chosen_slices(4), vec![0, 1, 2, 3]);
        let s = chosen_slices(60);
        assert_eq!(s.len(), 9);
        assert!(s[0] >= 5 && s[8] <= 54, "{s:?}");
    }
}
