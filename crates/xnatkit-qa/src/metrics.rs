//! The metrics, each a plain function of the image and the mask, with its
//! formula. `F` is the set of voxels inside the head mask, `B` the rest,
//! `N` the number of voxels. Definitions follow MRIQC/QAP (Esteban et al.
//! 2017; Shehzad et al. 2015) where those need no template.

/// Mean, standard deviation (population, `ddof = 0`), minimum and maximum
/// of `values`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
}

pub fn summary(values: impl Iterator<Item = f64> + Clone) -> Option<Summary> {
    let n = values.clone().count();
    if n == 0 {
        return None;
    }
    let mean = values.clone().sum::<f64>() / n as f64;
    let var = values.clone().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    Some(Summary {
        n,
        mean,
        stddev: var.sqrt(),
        min,
        max,
    })
}

/// SNR = μ_F / (σ_F · √(n / (n − 1))), with σ_F the population standard
/// deviation inside the mask (MRIQC's single-region SNR). `None` for fewer
/// than two voxels or no spread.
pub fn snr(head: &Summary) -> Option<f64> {
    let n = head.n as f64;
    (head.n > 1 && head.stddev > 0.0).then(|| head.mean / (head.stddev * (n / (n - 1.0)).sqrt()))
}

/// EFC (entropy focus criterion, Atkinson 1997) of the whole image,
/// normalised by its maximum: with x_max = √(Σ x²),
/// E = Σ (x / x_max) · ln((x + 10⁻¹⁶) / x_max) and
/// EFC = E / (N · N^(−½) · ln N^(−½)). Negative intensities count as 0.
/// 0 when all energy is in one voxel, 1 when all voxels are equal.
pub fn efc(image: &[f64]) -> Option<f64> {
    let n = image.len() as f64;
    let energy: f64 = image.iter().map(|&v| v.max(0.0).powi(2)).sum();
    if image.len() < 2 || energy <= 0.0 {
        return None;
    }
    let b_max = energy.sqrt();
    let efc_max = n * (1.0 / n.sqrt()) * (1.0 / n.sqrt()).ln();
    let e: f64 = image
        .iter()
        .map(|&v| {
            let x = v.max(0.0);
            (x / b_max) * ((x + 1e-16) / b_max).ln()
        })
        .sum();
    Some(e / efc_max)
}

/// FBER = mean(|F|²) / mean(|B|²) (QAP's foreground–background energy
/// ratio). `None` when there is no background, or its energy is below
/// 10⁻³ (an image whose background was zeroed, where MRIQC reports −1).
pub fn fber(image: &[f64], inside: &[bool]) -> Option<f64> {
    let (mut fg, mut nf, mut bg, mut nb) = (0f64, 0usize, 0f64, 0usize);
    for (&v, &i) in image.iter().zip(inside) {
        if i {
            fg += v * v;
            nf += 1;
        } else {
            bg += v * v;
            nb += 1;
        }
    }
    if nf == 0 || nb == 0 {
        return None;
    }
    let bg_mean = bg / nb as f64;
    (bg_mean >= 1e-3).then(|| (fg / nf as f64) / bg_mean)
}

/// The temporal SNR map of a series of `frames` frames: per voxel, the
/// mean over time divided by the population standard deviation over time;
/// 0 where the voxel never changes.
pub fn tsnr_map(data: &[f64], frame_len: usize, frames: usize) -> Vec<f64> {
    (0..frame_len)
        .map(|i| {
            let series = (0..frames).map(|t| data[t * frame_len + i]);
            let mean = series.clone().sum::<f64>() / frames as f64;
            let var = series.map(|v| (v - mean) * (v - mean)).sum::<f64>() / frames as f64;
            if var > 0.0 { mean / var.sqrt() } else { 0.0 }
        })
        .collect()
}

/// The median of `values` (the mean of the two middle ones for an even
/// count, as numpy's).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// Signal drift of a series, in percent: the least-squares line through
/// the mean signal inside the mask, g(t) ≈ a + b·t for t = 0 … T−1, and
/// drift = 100 · b · (T − 1) / mean(g) — how far the fitted signal moves
/// over the run relative to its level. `None` for fewer than 3 frames.
pub fn drift_percent(global_signal: &[f64]) -> Option<f64> {
    let t_count = global_signal.len();
    if t_count < 3 {
        return None;
    }
    let n = t_count as f64;
    let t_mean = (n - 1.0) / 2.0;
    let g_mean = global_signal.iter().sum::<f64>() / n;
    let (mut cov, mut var) = (0f64, 0f64);
    for (t, &g) in global_signal.iter().enumerate() {
        let dt = t as f64 - t_mean;
        cov += dt * (g - g_mean);
        var += dt * dt;
    }
    (g_mean != 0.0).then(|| 100.0 * (cov / var) * (n - 1.0) / g_mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efc_bounds() {
        let flat = vec![7.0; 64];
        assert!((efc(&flat).unwrap() - 1.0).abs() < 1e-12);
        let mut spike = vec![0.0; 64];
        spike[3] = 9.0;
        assert!(efc(&spike).unwrap().abs() < 1e-12);
    }

    #[test]
    fn snr_and_fber_by_hand() {
        let head = summary([1.0, 3.0].into_iter()).unwrap();
        // mean 2, population sd 1, n/(n-1) = 2
        assert!((snr(&head).unwrap() - 2.0 / 2f64.sqrt()).abs() < 1e-12);
        let image = [4.0, 4.0, 1.0, 1.0];
        let inside = [true, true, false, false];
        assert!((fber(&image, &inside).unwrap() - 16.0).abs() < 1e-12);
        assert_eq!(fber(&[4.0, 0.0], &[true, false]), None);
    }

    #[test]
    fn drift_of_a_line() {
        // 100 → 110 over 11 frames: +10 on a mean of 105.
        let g: Vec<f64> = (0..11).map(|t| 100.0 + t as f64).collect();
        assert!((drift_percent(&g).unwrap() - 1000.0 / 105.0).abs() < 1e-9);
        assert_eq!(drift_percent(&[1.0, 2.0]), None);
    }

    #[test]
    fn tsnr_and_median() {
        // voxel 0: 1,3 → mean 2, sd 1; voxel 1 constant.
        let data = [1.0, 5.0, 3.0, 5.0];
        assert_eq!(tsnr_map(&data, 2, 2), vec![2.0, 0.0]);
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }
}
