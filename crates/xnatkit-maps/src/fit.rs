//! Per-voxel curve fits: a linear start (weighted log-linear or a
//! 63 %-recovery guess), then least squares in the signal domain (where the
//! noise is additive). Every model here is linear in its amplitude (and
//! offset) once the rate is fixed, so the fit solves for those in closed
//! form and searches the rate alone (variable projection, Newton on the
//! projected sum of squares); Levenberg–Marquardt on all parameters, as
//! before, takes the voxels where that search does not settle inside the
//! range the data determine. Small fixed-size parameter vectors, no
//! allocation per voxel (up to 32 time points).

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
    levenberg_marquardt_to(t, y, start, model, LM_STOP)
}

/// When Levenberg–Marquardt stops: a step below `step` relative to every
/// parameter, or a fall of the sum of squares below `gain` relative to it.
#[derive(Debug, Clone, Copy)]
struct Stop {
    step: f64,
    gain: f64,
}

const LM_STOP: Stop = Stop {
    step: 1e-9,
    gain: 1e-12,
};

fn levenberg_marquardt_to<const P: usize>(
    t: &[f64],
    y: &[f64],
    start: [f64; P],
    model: impl Fn(f64, &[f64; P]) -> (f64, [f64; P]),
    stop: Stop,
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
                    .all(|(s, v)| s.abs() <= stop.step * v.abs().max(1e-12));
                let small_gain = sse - trial_sse <= stop.gain * sse.max(1e-300);
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
    Some(
        projected::<3>(Basis::Decay, t, y, r)
            .unwrap_or_else(|| decay_with_offset_lm(t, y, [m0, r, 0.0], LM_STOP)),
    )
}

fn decay_with_offset_lm(t: &[f64], y: &[f64], start: [f64; 3], stop: Stop) -> Fitted<3> {
    levenberg_marquardt_to(
        t,
        y,
        start,
        |ti, p| {
            let e = (-p[1] * ti).exp();
            (p[0] * e + p[2], [e, -p[0] * ti * e, 1.0])
        },
        stop,
    )
}

/// Mono-exponential decay, `S = S0·e^(−t·r)`: params `[S0, r]`.
pub fn decay(t: &[f64], y: &[f64]) -> Option<Fitted<2>> {
    let (s0, r) = start_decay(t, y)?;
    Some(projected::<2>(Basis::Decay, t, y, r).unwrap_or_else(|| decay_lm(t, y, [s0, r], LM_STOP)))
}

fn decay_lm(t: &[f64], y: &[f64], start: [f64; 2], stop: Stop) -> Fitted<2> {
    levenberg_marquardt_to(
        t,
        y,
        start,
        |ti, p| {
            let e = (-p[1] * ti).exp();
            (p[0] * e, [e, -p[0] * ti * e])
        },
        stop,
    )
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
    Some(
        projected::<2>(Basis::Recovery, t, y, r)
            .unwrap_or_else(|| recovery_lm(t, y, [a, r], LM_STOP)),
    )
}

fn recovery_lm(t: &[f64], y: &[f64], start: [f64; 2], stop: Stop) -> Fitted<2> {
    levenberg_marquardt_to(
        t,
        y,
        start,
        |ti, p| {
            let e = (-p[1] * ti).exp();
            (p[0] * (1.0 - e), [1.0 - e, p[0] * ti * e])
        },
        stop,
    )
}

pub fn recovery_with_offset(t: &[f64], y: &[f64]) -> Option<Fitted<3>> {
    let (a, r) = start_recovery(t, y)?;
    Some(
        projected::<3>(Basis::Recovery, t, y, r)
            .unwrap_or_else(|| recovery_with_offset_lm(t, y, [a, r, 0.0], LM_STOP)),
    )
}

fn recovery_with_offset_lm(t: &[f64], y: &[f64], start: [f64; 3], stop: Stop) -> Fitted<3> {
    levenberg_marquardt_to(
        t,
        y,
        start,
        |ti, p| {
            let e = (-p[1] * ti).exp();
            (p[0] * (1.0 - e) + p[2], [1.0 - e, p[0] * ti * e, 1.0])
        },
        stop,
    )
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

/// Which function of the rate the amplitude multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    /// `e^(−t·r)`
    Decay,
    /// `1 − e^(−t·r)`
    Recovery,
}

/// Steps of the projected fit before it gives up and leaves the voxel to
/// Levenberg–Marquardt.
const PROJECTED_ITERATIONS: usize = 40;

/// Halvings of a step that does not lower the residual.
const PROJECTED_HALVINGS: usize = 10;

/// A projected step this small relative to the rate ends the search: the
/// same relative step at which Levenberg–Marquardt stops.
const PROJECTED_STEP_TOLERANCE: f64 = 1e-9;

/// A Newton step whose predicted fall of the sum of squares is below this
/// relative to it ends the search too: the rate is then within about
/// `√(10⁻¹⁵·F/F'')` of the minimum, below what further steps can resolve.
const PROJECTED_GAIN_TOLERANCE: f64 = 1e-15;

/// The amplitudes that fit best at one rate, and what the search needs.
#[derive(Debug, Clone, Copy)]
struct Projection {
    rate: f64,
    amplitude: f64,
    offset: f64,
    sse: f64,
    /// `−½ dF/dr` of the projected sum of squares `F(r)` (`Σ ρ·∂f/∂r`).
    slope: f64,
    /// `½ d²F/dr²`: the Newton curvature.
    curvature: f64,
    /// `|P⊥ ∂f/∂r|²`: the Gauss–Newton curvature (never negative), for
    /// where `F` is not convex.
    gauss_newton: f64,
}

/// Least squares of the amplitude (and the offset) at `rate`: closed form,
/// as the model is linear in them, with the first two derivatives of the
/// sum of squares left at that amplitude. `work` keeps the basis and its
/// first two rate derivatives per time point between the passes.
fn project(
    basis: Basis,
    offset: bool,
    t: &[f64],
    y: &[f64],
    rate: f64,
    work: &mut [[f64; 3]],
) -> Option<Projection> {
    let n = t.len() as f64;
    for (&ti, slot) in t.iter().zip(work.iter_mut()) {
        let e = (-rate * ti).exp();
        let (de, dde) = (-ti * e, ti * ti * e);
        *slot = match basis {
            Basis::Decay => [e, de, dde],
            Basis::Recovery => [1.0 - e, -de, -dde],
        };
    }
    // With an offset, centring every column removes the constant exactly
    // (no 2×2 system to lose digits in when the basis is nearly flat); the
    // centring does not depend on the rate, so derivatives commute with it.
    let mut mean = [0.0; 4];
    if offset {
        for (slot, &yi) in work.iter().zip(y) {
            mean[0] += slot[0];
            mean[1] += slot[1];
            mean[2] += slot[2];
            mean[3] += yi;
        }
        for m in &mut mean {
            *m /= n;
        }
    }
    // Inner products of the centred basis p, its derivatives d, q, and
    // the centred data z.
    let (mut pp, mut pz, mut dz, mut pd, mut qz, mut dd, mut pq) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut raw = 0.0;
    for (slot, &yi) in work.iter().zip(y) {
        let (p, d, q, z) = (
            slot[0] - mean[0],
            slot[1] - mean[1],
            slot[2] - mean[2],
            yi - mean[3],
        );
        pp += p * p;
        pz += p * z;
        dz += d * z;
        pd += p * d;
        qz += q * z;
        dd += d * d;
        pq += p * q;
        raw += slot[0] * slot[0];
    }
    // A basis that is (numerically) constant cannot be told apart from
    // the offset, or vanishes: the amplitude is not determined.
    if !(pp > 1e-16 * raw && pp.is_finite()) {
        return None;
    }
    let c = pz / pp;
    let mut sse = 0.0;
    for (slot, &yi) in work.iter().zip(y) {
        let residual = (yi - mean[3]) - c * (slot[0] - mean[0]);
        sse += residual * residual;
    }
    // F = z·z − (p·z)²/(p·p), differentiated twice in r.
    let slope = c * (dz - c * pd);
    let curvature = -dz * dz / pp - c * qz + 4.0 * c * dz * pd / pp + c * c * (dd + pq)
        - 4.0 * c * c * pd * pd / pp;
    let gauss_newton = c * c * (dd - pd * pd / pp);
    let offset_value = if offset { mean[3] - c * mean[0] } else { 0.0 };
    (sse.is_finite() && c.is_finite() && offset_value.is_finite()).then_some(Projection {
        rate,
        amplitude: c,
        offset: offset_value,
        sse,
        slope,
        curvature,
        gauss_newton,
    })
}

/// Variable projection: the amplitude (and offset) are solved for in
/// closed form at each rate, and only the rate is searched, by safeguarded
/// Newton from `start_rate` (every accepted step lowers the sum of
/// squares). The same least-squares problem as [`levenberg_marquardt`] on
/// the full parameter vector, in 4–5 evaluations of the model per voxel
/// and without LM's damping loop and P×P solves.
///
/// `None` — the caller then runs Levenberg–Marquardt as before — when the
/// search fails (no descent, no convergence, a degenerate basis), and also
/// when the minimum found is one the maps flag invalid anyway (rate ≤ 0,
/// amplitude ≤ 0), or one the data barely determine: relaxation time beyond
/// five times the longest time, a first time point all but fully decayed
/// (or recovered), a modelled change below the residual, a standard error
/// of the rate above the rate. There the full-parameter search can end
/// elsewhere or not converge (invalid), and those voxels keep exactly the
/// answer they had.
fn projected<const P: usize>(
    basis: Basis,
    t: &[f64],
    y: &[f64],
    start_rate: f64,
) -> Option<Fitted<P>> {
    let offset = match P {
        2 => false,
        3 => true,
        _ => return None,
    };
    if t.len() != y.len() || t.len() < P || !(start_rate > 0.0 && start_rate.is_finite()) {
        return None;
    }
    let t_max = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let t_min = t.iter().cloned().fold(f64::INFINITY, f64::min);
    if !(t_max > 0.0 && t_min >= 0.0) {
        return None;
    }
    // T beyond 10× the longest time is invalid in the maps; from 5× on,
    // amplitude and offset trade off so strongly that LM has run out of
    // iterations (invalid) on curves whose minimum the projection reaches
    // (2 voxels of 726 663 in bench/maps.sh's T2 series): LM decides those
    // voxels, as before.
    let slowest = 0.2 / t_max;
    // `e^(−r·t_min)` below e^−20 (2·10⁻⁹): the first point has decayed (or
    // recovered) completely, the amplitude is barely determined.
    let fastest = if t_min > 0.0 {
        20.0 / t_min
    } else {
        f64::INFINITY
    };
    // The answer, if the minimum lies where the projection is trusted.
    // `work` holds the basis at `at.rate`: the search ends right after
    // evaluating it.
    let finish = |at: &Projection, work: &[[f64; 3]]| -> Option<Fitted<P>> {
        if !(at.rate >= slowest && at.rate <= fastest && at.amplitude > 0.0) {
            return None;
        }
        // A change over the sampled times smaller than the residual is a
        // fit to noise (a flat curve has such minima next to LM's): the
        // rate is not determined by the data, LM decides as before.
        let rms = (at.sse / t.len() as f64).sqrt();
        let (low, high) = work
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), b| {
                (l.min(b[0]), h.max(b[0]))
            });
        let change = at.amplitude * (high - low);
        if change.is_nan() || change <= rms {
            return None;
        }
        // The rate's standard error (noise from the residual, sensitivity
        // from the curvature) above the rate itself: the data do not
        // determine it. Levenberg–Marquardt often runs out of iterations on
        // such curves (not converged: invalid), so it keeps deciding them.
        let dof = t.len().saturating_sub(P).max(1) as f64;
        let error = (at.sse / dof / at.curvature).sqrt();
        if !(at.curvature > 0.0 && error <= at.rate) {
            return None;
        }
        let mut params = [0.0; P];
        params[0] = at.amplitude;
        params[1] = at.rate;
        if offset {
            params[2] = at.offset;
        }
        Some(Fitted {
            params,
            rms,
            converged: true,
        })
    };
    let mut on_stack = [[0.0; 3]; CACHED_POINTS];
    let mut on_heap = Vec::new();
    let work: &mut [[f64; 3]] = if t.len() <= CACHED_POINTS {
        &mut on_stack[..t.len()]
    } else {
        on_heap.resize(t.len(), [0.0; 3]);
        &mut on_heap
    };
    let mut at = project(basis, offset, t, y, start_rate, work)?;
    for _ in 0..PROJECTED_ITERATIONS {
        // Newton's step (quadratic convergence even with the large
        // residuals of noisy data, where Gauss–Newton gains about a digit
        // a step); Gauss–Newton's where F is not convex.
        let curvature = if at.curvature > 0.0 {
            at.curvature
        } else {
            at.gauss_newton
        };
        if curvature.is_nan() || curvature <= 0.0 {
            return None;
        }
        let mut step = at.slope / curvature;
        if !step.is_finite() {
            return None;
        }
        // Converged: a tiny step, or one whose predicted fall of the sum of
        // squares is below its rounding.
        if step.abs() <= PROJECTED_STEP_TOLERANCE * at.rate
            || at.slope * step <= PROJECTED_GAIN_TOLERANCE * at.sse
        {
            return finish(&at, work);
        }
        // A step far from the minimum can overshoot through zero; the rate
        // moves by at most a factor of ten per step.
        step = step.clamp(-0.9 * at.rate, 9.0 * at.rate);
        let predicted_gain = at.slope * step;
        let mut next = None;
        for _ in 0..PROJECTED_HALVINGS {
            if let Some(trial) = project(basis, offset, t, y, at.rate + step, work)
                && trial.sse <= at.sse
            {
                next = Some(trial);
                break;
            }
            step *= 0.5;
        }
        let Some(next) = next else {
            // Rounding hides any further fall of the sum of squares (LM
            // stops on a relative fall of 10⁻¹², or on no downhill step).
            if predicted_gain <= LM_STOP.gain * at.sse {
                // The trials overwrote `work`; `at` again (same values).
                let at = project(basis, offset, t, y, at.rate, work)?;
                return finish(&at, work);
            }
            return None;
        };
        at = next;
        // Far outside the determined range the search would only creep
        // towards zero or infinity: LM decides those voxels.
        if at.rate < 0.01 * slowest || at.rate > 2.5 * fastest {
            return None;
        }
    }
    None
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

    /// Deterministic Gaussian noise (xorshift64* and Box–Muller): the same
    /// curves on every run.
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            (bits as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn gaussian(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// A fit as the maps run it, its start, and Levenberg–Marquardt alone.
    type Model<const P: usize> = (
        fn(&[f64], &[f64]) -> Option<Fitted<P>>,
        fn(&[f64], &[f64]) -> Option<(f64, f64)>,
        fn(&[f64], &[f64], [f64; P], Stop) -> Fitted<P>,
    );

    const DECAY_WITH_OFFSET: Model<3> = (decay_with_offset, start_decay, decay_with_offset_lm);
    const DECAY: Model<2> = (decay, start_decay, decay_lm);
    const RECOVERY: Model<2> = (recovery, start_recovery, recovery_lm);
    const RECOVERY_WITH_OFFSET: Model<3> = (
        recovery_with_offset,
        start_recovery,
        recovery_with_offset_lm,
    );

    /// LM stopped far later than the maps stop it: the minimum itself, to
    /// compare with (the maps' LM stops within about 10⁻⁶ of it when the
    /// fit is poorly determined).
    const TIGHT: Stop = Stop {
        step: 1e-14,
        gain: 1e-16,
    };

    fn lm<const P: usize>(model: &Model<P>, t: &[f64], y: &[f64], stop: Stop) -> Option<Fitted<P>> {
        let (amplitude, rate) = (model.1)(t, y)?;
        let mut start = [0.0; P];
        start[0] = amplitude;
        start[1] = rate;
        Some((model.2)(t, y, start, stop))
    }

    /// The maps' validity rule (maps.rs `fit_voxel`).
    fn valid<const P: usize>(fit: &Fitted<P>, t: &[f64]) -> bool {
        let t_max = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let [amplitude, rate] = [fit.params[0], fit.params[1]];
        amplitude.is_finite()
            && rate.is_finite()
            && fit.rms.is_finite()
            && fit.converged
            && amplitude > 0.0
            && rate > 0.0
            && 1.0 / rate <= 10.0 * t_max
    }

    /// How the fit as the maps now run it relates to LM's answer as before.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Outcome {
        /// LM's answer (the projection left the voxel to LM).
        Lm,
        /// LM's minimum, from the projection.
        SameMinimum,
        /// A lower residual than LM's answer, which was not a minimum: LM
        /// ran out of iterations, or stopped where the rate no longer
        /// matters (every exponential 0) with the residual still large.
        Better,
    }

    /// Checks the fit as the maps now run it against LM as before:
    /// - LM's answer itself, or
    /// - LM's minimum to `tolerance` (relative; the offset relative to the
    ///   amplitude), no worse than LM's answer and valid or not alike, or
    /// - when LM's answer is not a minimum, a clearly lower residual at a
    ///   point that LM started from does not leave (a minimum).
    fn compare<const P: usize>(
        model: &Model<P>,
        t: &[f64],
        y: &[f64],
        tolerance: f64,
    ) -> Result<Outcome, String> {
        let (new, before) = match ((model.0)(t, y), lm(model, t, y, LM_STOP)) {
            (None, None) => return Ok(Outcome::Lm),
            (Some(new), Some(before)) => (new, before),
            other => return Err(format!("one fit failed: {other:?}")),
        };
        if new == before {
            return Ok(Outcome::Lm);
        }
        // Residuals of exact fits (three points, three parameters) differ
        // in rounding only: not better.
        let floor = 1e-9 * new.params[0].abs().max(before.params[0].abs());
        let better = !before.converged || new.rms < before.rms * (1.0 - 1e-6) - floor;
        let minimum = if better {
            (model.2)(t, y, new.params, TIGHT)
        } else {
            lm(model, t, y, TIGHT).ok_or("no start")?
        };
        let amplitude = minimum.params[0].abs();
        let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= tolerance * scale;
        let same = new.converged
            && (better || valid(&new, t) == valid(&before, t))
            && close(new.params[0], minimum.params[0], amplitude)
            && close(new.params[1], minimum.params[1], minimum.params[1].abs())
            && (P < 3
                || close(
                    new.params[2],
                    minimum.params[2],
                    amplitude.max(minimum.params[2].abs()),
                ))
            && close(new.rms, minimum.rms, minimum.rms.max(1e-3 * amplitude))
            && new.rms <= before.rms * (1.0 + 1e-12) + 1e-9 * amplitude;
        if !same {
            return Err(format!(
                "new {new:?}\nLM as before {before:?}\nLM to the minimum {minimum:?}"
            ));
        }
        Ok(if better {
            Outcome::Better
        } else {
            Outcome::SameMinimum
        })
    }

    /// Voxels by [`Outcome`].
    #[derive(Debug, Default)]
    struct Tally {
        lm: usize,
        same_minimum: usize,
        better: usize,
    }

    impl Tally {
        fn fitted(&self) -> usize {
            self.lm + self.same_minimum + self.better
        }

        /// The comparison means something only if the projection did the
        /// work; on ordinary curves LM (nearly) always finds the minimum.
        fn assert_projected(&self, share: f64) {
            let fitted = self.fitted() as f64;
            assert!(self.same_minimum as f64 >= share * fitted, "{self:?}");
            assert!(self.better as f64 <= 0.02 * fitted, "{self:?}");
        }
    }

    fn echoes() -> Vec<f64> {
        (1..=12).map(|k| 10.0 * k as f64).collect()
    }

    /// Fits `curve(t, time) + noise` for every relaxation time and noise
    /// level (`repeats` noise draws each), checking each against LM.
    fn sweep<const P: usize>(
        model: &Model<P>,
        t: &[f64],
        times: &[f64],
        sigmas: &[f64],
        repeats: usize,
        curve: impl Fn(f64, f64) -> f64,
        seed: u64,
    ) -> Tally {
        let mut noise = Noise(seed);
        let mut tally = Tally::default();
        for &time in times {
            for &sigma in sigmas {
                for _ in 0..repeats {
                    let y: Vec<f64> = t
                        .iter()
                        .map(|&ti| curve(ti, time) + sigma * noise.gaussian())
                        .collect();
                    match compare(model, t, &y, 1e-6) {
                        Ok(Outcome::Lm) => tally.lm += 1,
                        Ok(Outcome::SameMinimum) => tally.same_minimum += 1,
                        Ok(Outcome::Better) => tally.better += 1,
                        Err(e) => panic!("time {time}, sigma {sigma}, t {t:?}, y {y:?}:\n{e}"),
                    }
                }
            }
        }
        tally
    }

    fn t2_curve(ti: f64, t2: f64) -> f64 {
        1000.0 * (-ti / t2).exp() + 30.0
    }

    fn t1_curve(ti: f64, t1: f64) -> f64 {
        1000.0 * (1.0 - (-ti / t1).exp())
    }

    #[test]
    fn projected_decay_with_offset_is_the_lm_minimum_on_noisy_curves() {
        let times = [15.0, 30.0, 45.0, 70.0, 100.0, 150.0, 300.0];
        let sigmas = [2.0, 20.0, 60.0];
        sweep(
            &DECAY_WITH_OFFSET,
            &echoes(),
            &times,
            &sigmas,
            40,
            t2_curve,
            1,
        )
        .assert_projected(0.9);
    }

    #[test]
    fn projected_decay_is_the_lm_minimum_on_noisy_curves() {
        let times = [8.0, 30.0, 60.0, 150.0, 500.0];
        let curve = |ti: f64, t2: f64| 800.0 * (-ti / t2).exp();
        sweep(&DECAY, &echoes(), &times, &[1.0, 10.0, 50.0], 40, curve, 2).assert_projected(0.8);
        // ADC: b-values in s/mm², diffusivities (1/"time") around 10⁻³.
        let b = [0.0, 500.0, 1000.0];
        let inverse_adc = [3e-4, 1e-3, 3e-3].map(|d: f64| 1.0 / d);
        let curve = |bi: f64, inverse: f64| 1000.0 * (-bi / inverse).exp();
        sweep(&DECAY, &b, &inverse_adc, &[1.0, 20.0], 40, curve, 3).assert_projected(0.9);
    }

    #[test]
    fn projected_recovery_is_the_lm_minimum_on_noisy_curves() {
        let times = [200.0, 600.0, 1200.0, 2000.0, 5000.0];
        let sigmas = [2.0, 20.0, 60.0];
        let three = [300.0, 1000.0, 3000.0];
        sweep(&RECOVERY, &three, &times, &sigmas, 40, t1_curve, 10).assert_projected(0.8);
        let five = [100.0, 400.0, 1000.0, 2500.0, 6000.0];
        sweep(&RECOVERY, &five, &times, &sigmas, 40, t1_curve, 11).assert_projected(0.8);
    }

    #[test]
    fn projected_recovery_with_offset_is_the_lm_minimum_on_noisy_curves() {
        let times = [300.0, 800.0, 1500.0, 3000.0];
        let curve = |ti: f64, t1: f64| t1_curve(ti, t1) + 50.0;
        let three = [300.0, 1000.0, 3000.0];
        sweep(
            &RECOVERY_WITH_OFFSET,
            &three,
            &times,
            &[2.0, 20.0],
            40,
            curve,
            20,
        )
        .assert_projected(0.8);
        let five = [100.0, 400.0, 1000.0, 2500.0, 6000.0];
        sweep(
            &RECOVERY_WITH_OFFSET,
            &five,
            &times,
            &[2.0, 20.0],
            40,
            curve,
            21,
        )
        .assert_projected(0.8);
    }

    #[test]
    fn flat_zero_and_negative_curves_get_lm_s_answer() {
        let t = echoes();
        let curves: Vec<Vec<f64>> = vec![
            vec![500.0; 12],
            vec![0.0; 12],
            vec![-40.0; 12],
            t.iter().map(|&ti| -1000.0 * (-ti / 40.0).exp()).collect(),
            t.iter()
                .map(|&ti| if ti < 60.0 { 0.0 } else { -5.0 })
                .collect(),
        ];
        for y in &curves {
            assert_eq!(
                compare(&DECAY_WITH_OFFSET, &t, y, 1e-6),
                Ok(Outcome::Lm),
                "{y:?}"
            );
            assert_eq!(compare(&DECAY, &t, y, 1e-6), Ok(Outcome::Lm), "{y:?}");
            assert_eq!(compare(&RECOVERY, &t, y, 1e-6), Ok(Outcome::Lm), "{y:?}");
            assert_eq!(
                compare(&RECOVERY_WITH_OFFSET, &t, y, 1e-6),
                Ok(Outcome::Lm),
                "{y:?}"
            );
        }
        // Straight lines: a slow recovery fits a rising one inside the
        // sampled range, so the projection may answer, with LM's minimum.
        for y in [
            t.iter().map(|&ti| 100.0 + ti).collect::<Vec<f64>>(),
            t.iter().map(|&ti| 300.0 - ti).collect(),
        ] {
            let fine = [Ok(Outcome::Lm), Ok(Outcome::SameMinimum)];
            assert!(
                fine.contains(&compare(&DECAY_WITH_OFFSET, &t, &y, 1e-6)),
                "{y:?}"
            );
            assert!(fine.contains(&compare(&DECAY, &t, &y, 1e-6)), "{y:?}");
            assert!(fine.contains(&compare(&RECOVERY, &t, &y, 1e-6)), "{y:?}");
            assert!(
                fine.contains(&compare(&RECOVERY_WITH_OFFSET, &t, &y, 1e-6)),
                "{y:?}"
            );
        }
    }

    #[test]
    fn relaxation_times_far_outside_the_sampled_range_are_judged_as_before() {
        // Noiseless, the minimum lies outside the determined range: LM's
        // answer as before. Noise may put a minimum inside the range; then
        // it is LM's minimum, or a lower residual than where LM stopped.
        let t2 = [0.2, 1.0, 2_000.0, 20_000.0, 1e6];
        let t = [300.0, 1000.0, 3000.0];
        let t1 = [1.0, 10.0, 50_000.0, 1e7];
        let lm_only = |tally: Tally| assert_eq!(tally.lm, tally.fitted(), "{tally:?}");
        lm_only(sweep(
            &DECAY_WITH_OFFSET,
            &echoes(),
            &t2,
            &[0.0],
            1,
            t2_curve,
            30,
        ));
        lm_only(sweep(&DECAY, &echoes(), &t2, &[0.0], 1, t2_curve, 31));
        lm_only(sweep(&RECOVERY, &t, &t1, &[0.0], 1, t1_curve, 32));
        lm_only(sweep(
            &RECOVERY_WITH_OFFSET,
            &t,
            &t1,
            &[0.0],
            1,
            t1_curve,
            33,
        ));
        let sigmas = [1.0, 20.0];
        sweep(
            &DECAY_WITH_OFFSET,
            &echoes(),
            &t2,
            &sigmas,
            20,
            t2_curve,
            34,
        );
        sweep(&DECAY, &echoes(), &t2, &sigmas, 20, t2_curve, 35);
        sweep(&RECOVERY, &t, &t1, &[5.0], 20, t1_curve, 36);
        sweep(&RECOVERY_WITH_OFFSET, &t, &t1, &[5.0], 20, t1_curve, 37);
    }

    #[test]
    fn minima_outside_the_determined_range_are_left_to_lm() {
        // T2 = 20 s sampled to 120 ms, T2 = 0.1 ms from TE 10 ms.
        let t = echoes();
        for t2 in [20_000.0, 0.1] {
            let y: Vec<f64> = t.iter().map(|&ti| t2_curve(ti, t2)).collect();
            let (_, r) = start_decay(&t, &y).unwrap();
            assert_eq!(projected::<3>(Basis::Decay, &t, &y, r), None, "T2 {t2}");
            assert_eq!(projected::<2>(Basis::Decay, &t, &y, r), None, "T2 {t2}");
        }
    }

    #[test]
    fn projection_derivatives_match_finite_differences() {
        let mut noise = Noise(99);
        let t = echoes();
        let y: Vec<f64> = t
            .iter()
            .map(|&ti| t2_curve(ti, 50.0) + 20.0 * noise.gaussian())
            .collect();
        let mut work = vec![[0.0; 3]; t.len()];
        for basis in [Basis::Decay, Basis::Recovery] {
            for offset in [false, true] {
                let mut sse = |r: f64| project(basis, offset, &t, &y, r, &mut work).unwrap().sse;
                let (r, h) = (0.03, 1e-5);
                let (low, mid, high) = (sse(r - h), sse(r), sse(r + h));
                let at = project(basis, offset, &t, &y, r, &mut work).unwrap();
                let slope = -(high - low) / (4.0 * h);
                let curvature = (high - 2.0 * mid + low) / (2.0 * h * h);
                assert!(
                    (at.slope - slope).abs() <= 1e-5 * slope.abs(),
                    "{basis:?} {offset}: {at:?} vs slope {slope}"
                );
                assert!(
                    (at.curvature - curvature).abs() <= 1e-4 * curvature.abs(),
                    "{basis:?} {offset}: {at:?} vs curvature {curvature}"
                );
            }
        }
    }
}
