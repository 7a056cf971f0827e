//! Per-voxel curve fits: a linear start (weighted log-linear or a
//! 63 %-recovery guess) refined by Levenberg–Marquardt on the signal itself
//! (least squares in the signal domain, where the noise is additive).
//! Small fixed-size parameter vectors, no allocation per voxel (up to 32
//! time points).

// Small matrix algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

/// Result of one fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fitted<const P: usize> {
    pub params: [f64; P],
    /// Root mean square of the residuals, signal units.
    pub rms: f64,
    pub converged: bool,
}

const MAX_ITERATIONS: usize = 100;

/// Solves `a x = b` (P×P) by Gaussian elimination with partial pivoting
/// (the pivot: the last row of largest magnitude in the column).
#[inline]
fn solve<const P: usize>(mut a: [[f64; P]; P], mut b: [f64; P]) -> Option<[f64; P]> {
    for col in 0..P {
        let mut pivot = col;
        for i in col + 1..P {
            if a[i][col].abs().total_cmp(&a[pivot][col].abs()) != std::cmp::Ordering::Less {
                pivot = i;
            }
        }
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..P {
            let f = a[row][col] / a[col][col];
            for k in col..P {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; P];
    for row in (0..P).rev() {
        let mut s = b[row];
        for k in row + 1..P {
            s -= a[row][k] * x[k];
        }
        x[row] = s / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Time points whose model values a fit keeps on the stack; longer curves
/// keep them on the heap.
const CACHED_POINTS: usize = 32;

/// Levenberg–Marquardt (Marquardt's diagonal scaling) for `y ≈ f(t; p)`,
/// `model` returning the value and the gradient in `p`.
pub fn levenberg_marquardt<const P: usize>(
    t: &[f64],
    y: &[f64],
    start: [f64; P],
    model: impl Fn(f64, &[f64; P]) -> (f64, [f64; P]),
) -> Fitted<P> {
    // The model's value and gradient at each time point for the parameters
    // last evaluated: an accepted step's evaluation is the next iteration's
    // Jacobian, so each step costs one evaluation of the model, not two.
    let mut on_stack = [(0.0, [0.0; P]); CACHED_POINTS];
    let mut on_heap = Vec::new();
    let evaluated: &mut [(f64, [f64; P])] = if t.len() <= CACHED_POINTS {
        &mut on_stack[..t.len()]
    } else {
        on_heap.resize(t.len(), (0.0, [0.0; P]));
        &mut on_heap
    };
    let sse_of = |p: &[f64; P], evaluated: &mut [(f64, [f64; P])]| -> f64 {
        t.iter()
            .zip(y)
            .zip(evaluated.iter_mut())
            .map(|((&ti, &yi), slot)| {
                *slot = model(ti, p);
                let r = yi - slot.0;
                r * r
            })
            .sum()
    };
    let mut p = start;
    let mut sse = sse_of(&p, evaluated);
    let mut lambda = 1e-3;
    let mut converged = false;
    if !sse.is_finite() {
        return Fitted {
            params: p,
            rms: f64::NAN,
            converged: false,
        };
    }
    for _ in 0..MAX_ITERATIONS {
        let mut jtj = [[0.0; P]; P];
        let mut jtr = [0.0; P];
        for (&(f, g), &yi) in evaluated.iter().zip(y) {
            let r = yi - f;
            for i in 0..P {
                jtr[i] += g[i] * r;
                for j in 0..=i {
                    jtj[i][j] += g[i] * g[j];
                }
            }
        }
        for i in 0..P {
            for j in 0..i {
                jtj[j][i] = jtj[i][j];
            }
        }
        let mut improved = false;
        while lambda < 1e12 {
            let mut a = jtj;
            for (i, row) in a.iter_mut().enumerate() {
                row[i] += lambda * jtj[i][i].max(1e-12);
            }
            let Some(step) = solve(a, jtr) else {
                lambda *= 10.0;
                continue;
            };
            let mut trial = p;
            for i in 0..P {
                trial[i] += step[i];
            }
            let trial_sse = sse_of(&trial, evaluated);
            if trial_sse.is_finite() && trial_sse <= sse {
                let small_step = step
                    .iter()
                    .zip(&trial)
                    .all(|(s, v)| s.abs() <= 1e-9 * v.abs().max(1e-12));
                let small_gain = sse - trial_sse <= 1e-12 * sse.max(1e-300);
                p = trial;
                sse = trial_sse;
                lambda = (lambda / 10.0).max(1e-12);
                improved = true;
                if small_step || small_gain {
                    converged = true;
                }
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            // No downhill step at any damping: a (local) minimum.
            converged = true;
        }
        if converged {
            break;
        }
    }
    Fitted {
        params: p,
        rms: (sse / t.len() as f64).sqrt(),
        converged,
    }
}

/// Weighted least squares of `ln y = a − r·t` over `y > 0` with weights
/// `y²` (var(ln y) ≈ σ²/y²): returns `(e^a, r)`.
pub fn log_linear(t: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let (mut sw, mut st, mut sl, mut stt, mut stl) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut used = 0;
    for (&ti, &yi) in t.iter().zip(y) {
        if yi > 0.0 {
            let w = yi * yi;
            let l = yi.ln();
            sw += w;
            st += w * ti;
            sl += w * l;
            stt += w * ti * ti;
            stl += w * ti * l;
            used += 1;
        }
    }
    if used < 2 {
        return None;
    }
    let denominator = sw * stt - st * st;
    if denominator.abs() < 1e-300 {
        return None;
    }
    let slope = (sw * stl - st * sl) / denominator;
    let intercept = (sl - slope * st) / sw;
    let r = -slope;
    (intercept.is_finite() && r.is_finite()).then(|| (intercept.exp(), r))
}

/// Mono-exponential decay with offset, `S = M0·e^(−t·r) + C` (T2 = 1/r):
/// params `[M0, r, C]`.
pub fn decay_with_offset(t: &[f64], y: &[f64]) -> Option<Fitted<3>> {
    let (m0, r) = start_decay(t, y)?;
    Some(levenberg_marquardt(t, y, [m0, r, 0.0], |ti, p| {
        let e = (-p[1] * ti).exp();
        (p[0] * e + p[2], [e, -p[0] * ti * e, 1.0])
    }))
}

/// Mono-exponential decay, `S = S0·e^(−t·r)`: params `[S0, r]`.
pub fn decay(t: &[f64], y: &[f64]) -> Option<Fitted<2>> {
    let (s0, r) = start_decay(t, y)?;
    Some(levenberg_marquardt(t, y, [s0, r], |ti, p| {
        let e = (-p[1] * ti).exp();
        (p[0] * e, [e, -p[0] * ti * e])
    }))
}

fn start_decay(t: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let (s0, r) = log_linear(t, y)?;
    let span = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - t.iter().cloned().fold(f64::INFINITY, f64::min);
    // A rising or flat curve still gets a decay to start from.
    let r = if r > 0.0 { r } else { 1.0 / span.max(1e-12) };
    Some((s0, r))
}

/// Saturation recovery, `S = A·(1 − e^(−t·r))` (+ `C`): params `[A, r]` or
/// `[A, r, C]`. Start: A = the largest signal, T1 where the curve reaches
/// 63 % of it (linear interpolation).
pub fn recovery(t: &[f64], y: &[f64]) -> Option<Fitted<2>> {
    let (a, r) = start_recovery(t, y)?;
    Some(levenberg_marquardt(t, y, [a, r], |ti, p| {
        let e = (-p[1] * ti).exp();
        (p[0] * (1.0 - e), [1.0 - e, p[0] * ti * e])
    }))
}

pub fn recovery_with_offset(t: &[f64], y: &[f64]) -> Option<Fitted<3>> {
    let (a, r) = start_recovery(t, y)?;
    Some(levenberg_marquardt(t, y, [a, r, 0.0], |ti, p| {
        let e = (-p[1] * ti).exp();
        (p[0] * (1.0 - e) + p[2], [1.0 - e, p[0] * ti * e, 1.0])
    }))
}

fn start_recovery(t: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let max = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if max <= 0.0 || !max.is_finite() {
        return None;
    }
    let target = 0.63 * max;
    let mut t63 = None;
    let mut previous: Option<(f64, f64)> = None;
    for (&ti, &yi) in t.iter().zip(y) {
        if yi >= target {
            t63 = Some(match previous {
                Some((tp, yp)) if yi > yp => tp + (target - yp) * (ti - tp) / (yi - yp),
                _ => ti,
            });
            break;
        }
        previous = Some((ti, yi));
    }
    let t_max = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let t1 = t63.filter(|v| *v > 0.0).unwrap_or(t_max / 2.0);
    Some((max / 0.9, 1.0 / t1.max(1e-12)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noiseless_decay_is_exact() {
        let t: Vec<f64> = (1..=8).map(|k| 10.0 * k as f64).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|&ti| 1000.0 * (-ti / 45.0).exp() + 20.0)
            .collect();
        let fit = decay_with_offset(&t, &y).unwrap();
        assert!(fit.converged);
        assert!((1.0 / fit.params[1] - 45.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.params[2] - 20.0).abs() < 1e-6, "{fit:?}");
    }

    #[test]
    fn noiseless_recovery_is_exact() {
        let t = [200.0, 800.0, 3000.0];
        let y: Vec<f64> = t
            .iter()
            .map(|&ti| 500.0 * (1.0 - (-ti / 1200.0_f64).exp()))
            .collect();
        let fit = recovery(&t, &y).unwrap();
        assert!((1.0 / fit.params[1] - 1200.0).abs() < 1e-6, "{fit:?}");
    }
}
