//! Where the projected search starts: close to the minimum, from a table
//! of the time points' geometry.
//!
//! At the best amplitude (and offset) for a rate `r`, the projected sum of
//! squares `F(r)` has the slope `−2·c·(w(r)·y)/(p·p)`, with `p` the basis
//! at `r` (centred when there is an offset), `d = ∂p/∂r`, `c` the
//! amplitude and `w = d − (p·d)/(p·p)·p` the part of `d` that the
//! amplitude cannot absorb. `w` depends on the time points alone, so it is
//! tabulated once per series on a grid of rates, and each curve's minimum
//! is located where `h(r) = ŵ(r)·y` (`ŵ = w/|w|`) first changes sign
//! from + to − (a minimum of `F` for a positive amplitude): on a coarse
//! grid of rates, then on a fine one inside the coarse bracket, then by
//! linear interpolation between the two rates that bracket the root. A
//! few vector multiply–adds per curve instead of a projection
//! (exponentials and a dozen inner products) per Newton step; the search
//! then starts within about 10⁻⁴ of the minimum and ends after about two
//! projections where the 63 %-recovery or log-linear guesses took three
//! or four.
//!
//! Only the start changes: the search, its safeguards and its verdicts
//! are the same, and a curve the table cannot bracket (the minimum outside
//! the range the search trusts, a negative amplitude, NaNs) starts from
//! the model's guess as before.

use super::Basis;
use super::exp::exp_lanes;

/// The step in `ln r` at which the range is scanned for where the basis
/// degenerates.
const SCAN_STEP: f64 = 0.1;

/// At most this many scan steps (a range of e^100).
const MAX_SCAN: usize = 1000;

/// Rates of the coarse level (15 intervals over the range).
const COARSE: usize = 16;

/// Rates per coarse interval at the fine level: with the coarse level, a
/// spacing of about 0.03 in `ln r` over the usual ranges (10³), across
/// which linear interpolation leaves the start within about 10⁻⁴ of the
/// root.
const FINE: usize = 16;

/// `ŵ` at the rates `slowest·e^(j·step)`: every [`FINE`]th of them (the
/// coarse level) and all of them (the fine level, by coarse interval).
/// Each level is stored by time point, one value per rate, so that `h` at
/// all of a level's rates is a few vector multiply–adds, and the bracket
/// is found from the signs without a branch per rate.
#[derive(Debug, Clone)]
pub(super) struct StartTable {
    /// Every rate of the fine level, in order (and the last coarse one).
    rates: Vec<f64>,
    /// Whether the model has an offset: the curves are centred too (a
    /// flat curve then gives `h = 0` exactly, not rounding noise).
    offset: bool,
    points: usize,
    /// `[point][rate]`
    coarse: Vec<[f64; COARSE]>,
    /// `[interval · points + point][rate]`
    fine: Vec<[f64; FINE]>,
}

/// `ŵ` at `rate` for the basis at `t`, or `None` where the basis is all
/// but flat (centred, or fully recovered) and `w` is cancellation noise.
fn unit_w(basis: Basis, offset: bool, t: &[f64], rate: f64) -> Option<Vec<f64>> {
    let (base, sign) = match basis {
        Basis::Decay => (0.0, 1.0),
        Basis::Recovery => (1.0, -1.0),
    };
    let e: Vec<f64> = t.iter().map(|&ti| exp_lanes([-rate * ti])[0]).collect();
    let mut p: Vec<f64> = e.iter().map(|e| base + sign * e).collect();
    let mut d: Vec<f64> = e.iter().zip(t).map(|(e, ti)| -sign * ti * e).collect();
    if offset {
        for v in [&mut p, &mut d] {
            let mean = v.iter().sum::<f64>() / t.len() as f64;
            v.iter_mut().for_each(|x| *x -= mean);
        }
    }
    let pp: f64 = p.iter().map(|x| x * x).sum();
    let pd: f64 = p.iter().zip(&d).map(|(x, y)| x * y).sum();
    let w: Vec<f64> = d.iter().zip(&p).map(|(di, pi)| di - pd / pp * pi).collect();
    let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = d.iter().map(|x| x * x).sum::<f64>().sqrt();
    (norm > 1e-6 * scale && norm.is_finite()).then(|| w.iter().map(|x| x / norm).collect())
}

/// `h` at a level's rates (`rows` by time point) for the curve `y` less
/// `mean`, and which of them are positive (bit `m` for rate `m`).
#[inline(always)]
fn level<const N: usize>(rows: &[[f64; N]], y: &[f64], mean: f64) -> ([f64; N], u32) {
    let mut h = [0.0; N];
    for (row, &yi) in rows.iter().zip(y) {
        let yi = yi - mean;
        for m in 0..N {
            h[m] += row[m] * yi;
        }
    }
    let mut positive = 0u32;
    for (m, &v) in h.iter().enumerate() {
        positive |= u32::from(v > 0.0) << m;
    }
    (h, positive)
}

/// The lowest `k` below `n − 1` with `h[k] > 0` and not `h[k + 1] > 0`
/// (a + to − crossing; NaN counts as not positive).
#[inline(always)]
fn first_crossing(positive: u32, n: usize) -> Option<usize> {
    let crossings = positive & !(positive >> 1) & ((1 << (n - 1)) - 1);
    (crossings != 0).then(|| crossings.trailing_zeros() as usize)
}

impl StartTable {
    /// The table for curves sampled at `t` over the rates the search
    /// trusts (the relaxation time from a fifth of the longest time to a
    /// twentieth of the shortest positive one, or less where the basis
    /// becomes flat). `None` when `t` has no such range: every curve then
    /// starts from its model's guess.
    pub(super) fn new(basis: Basis, offset: bool, t: &[f64]) -> Option<StartTable> {
        let t_max = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let t_min = t
            .iter()
            .cloned()
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let parameters = if offset { 3 } else { 2 };
        if t.len() < parameters || !(t_max > 0.0 && t_max.is_finite()) || t.iter().any(|&v| v < 0.0)
        {
            return None;
        }
        let (slowest, fastest) = (0.2 / t_max, 20.0 / t_min);
        let rate = |u: f64| slowest * exp_lanes([u])[0];
        // The range in ln r: up to the fastest rate, or the last scanned
        // rate before the basis degenerates.
        let mut span = 0.0;
        for j in 1..MAX_SCAN {
            let u = j as f64 * SCAN_STEP;
            if unit_w(basis, offset, t, rate(u)).is_none() {
                break;
            }
            span = u;
            if rate(u) >= fastest {
                break;
            }
        }
        // Less than a factor of two: nothing to tabulate.
        if span < 0.7 {
            return None;
        }
        let step = span / ((COARSE - 1) * FINE) as f64;
        let points = t.len();
        let mut coarse = vec![[0.0; COARSE]; points];
        let mut fine = vec![[0.0; FINE]; (COARSE - 1) * points];
        for k in 0..COARSE {
            // The last coarse rate ends the range: no interval after it.
            let rates_here = if k + 1 < COARSE { FINE } else { 1 };
            for m in 0..rates_here {
                let row = unit_w(basis, offset, t, rate((k * FINE + m) as f64 * step))?;
                for (i, w) in row.into_iter().enumerate() {
                    if m == 0 {
                        coarse[i][k] = w;
                    }
                    if k + 1 < COARSE {
                        fine[k * points + i][m] = w;
                    }
                }
            }
        }
        Some(StartTable {
            rates: (0..=(COARSE - 1) * FINE)
                .map(|j| rate(j as f64 * step))
                .collect(),
            offset,
            points,
            coarse,
            fine,
        })
    }

    /// The start rate for the curve `y` (sampled at the table's `t`):
    /// `None` when the table does not bracket a minimum.
    #[inline(always)]
    pub(super) fn rate(&self, y: &[f64]) -> Option<f64> {
        if y.len() != self.points {
            return None;
        }
        let mean = match self.offset {
            true => y.iter().sum::<f64>() / self.points as f64,
            false => 0.0,
        };
        let (h, positive) = level(&self.coarse, y, mean);
        let k = first_crossing(positive, COARSE)?;
        // Fine rate 0 is coarse rate k (the same sums: > 0); the next
        // interval's first is coarse rate k + 1 (not > 0).
        let (fine, positive) = level(&self.fine[k * self.points..][..self.points], y, mean);
        let m = first_crossing(positive, FINE + 1)?;
        let at = |i: usize| if i < FINE { fine[i] } else { h[k + 1] };
        let rate = self.root(k * FINE, m, at);
        (rate > 0.0 && rate.is_finite()).then_some(rate)
    }

    /// The rate where `h` (at fine rates `first + i`, `i` up to [`FINE`])
    /// crosses zero between rates `m` and `m + 1`: inverse cubic
    /// interpolation through the four rates around the crossing (the
    /// rate as a cubic in `h`; its error shrinks with the spacing's fourth
    /// power, so the search usually ends with its first Newton step), or
    /// linear where `h` is not strictly falling there or the cubic lands
    /// outside the bracket.
    #[inline(always)]
    fn root(&self, first: usize, m: usize, h: impl Fn(usize) -> f64) -> f64 {
        let (above, below) = (h(m), h(m + 1));
        let (slower, faster) = (self.rates[first + m], self.rates[first + m + 1]);
        let linear = slower + (faster - slower) * (above / (above - below));
        let a = m.saturating_sub(1).min(FINE - 3);
        let hs = [h(a), h(a + 1), h(a + 2), h(a + 3)];
        if !(hs[0] > hs[1] && hs[1] > hs[2] && hs[2] > hs[3]) {
            return linear;
        }
        let mut cubic = 0.0;
        for i in 0..4 {
            let (mut numerator, mut denominator) = (1.0, 1.0);
            for j in 0..4 {
                if j != i {
                    numerator *= -hs[j];
                    denominator *= hs[i] - hs[j];
                }
            }
            cubic += self.rates[first + a + i] * (numerator / denominator);
        }
        match cubic >= slower && cubic <= faster {
            true => cubic,
            false => linear,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noiseless_curves_start_near_their_rate() {
        let echoes: Vec<f64> = (1..=12).map(|k| 10.0 * k as f64).collect();
        let recoveries = [300.0, 1000.0, 3000.0];
        for (basis, offset, t) in [
            (Basis::Decay, true, &echoes[..]),
            (Basis::Decay, false, &echoes[..]),
            (Basis::Recovery, false, &recoveries[..]),
            (Basis::Recovery, true, &recoveries[..]),
        ] {
            let table = StartTable::new(basis, offset, t).expect("a table");
            let t_max = t.iter().cloned().fold(0.0, f64::max);
            for time in [0.3 * t_max, t_max, 2.0 * t_max] {
                let y: Vec<f64> = t
                    .iter()
                    .map(|&ti| {
                        let e = (-ti / time).exp();
                        let b = if basis == Basis::Decay { e } else { 1.0 - e };
                        1000.0 * b + if offset { 40.0 } else { 0.0 }
                    })
                    .collect();
                let rate = table.rate(&y).expect("bracketed");
                let relative = (rate * time - 1.0).abs();
                assert!(relative < 1e-6, "{basis:?} {offset} T {time}: {relative}");
            }
            // A flat curve, a negative one, NaN: no start from the table.
            for y in [
                vec![5.0; t.len()],
                vec![-1000.0; t.len()],
                vec![f64::NAN; t.len()],
            ] {
                assert_eq!(table.rate(&y), None, "{basis:?} {offset} {y:?}");
            }
        }
    }
}
