//! Per-voxel curve fits: least squares in the signal domain (where the
//! noise is additive). Every model here is linear in its amplitude (and
//! offset) once the rate is fixed, so the fit solves for those in closed
//! form and searches the rate alone (variable projection, Newton on the
//! projected sum of squares), from a start located on a table of the time
//! points' geometry (`start_table`) or, where that has none, the model's
//! guess (weighted log-linear, or the 63 %-recovery time);
//! Levenberg–Marquardt on all parameters, from the guess as before, takes
//! the voxels where that search does not settle inside the range the data
//! determine. Small fixed-size parameter vectors, no
//! allocation per voxel (up to 32 time points).
//!
//! The maps fit many curves at once ([`CurveFitter`]): the projected search
//! runs on four voxels together in vector registers (`lanes`), with an
//! exponential of its own (`exp`) so that the arithmetic is the same on
//! every machine, and a voxel gets the same bits as when fitted alone.

// Small matrix algebra reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

mod exp;
mod lanes;
mod start_table;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

use start_table::StartTable;

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
    one_curve::<3, DecayStart>(Basis::Decay, t, y, decay_with_offset_lm)
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
    one_curve::<2, DecayStart>(Basis::Decay, t, y, decay_lm)
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
    one_curve::<2, RecoveryStart>(Basis::Recovery, t, y, recovery_lm)
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
    one_curve::<3, RecoveryStart>(Basis::Recovery, t, y, recovery_with_offset_lm)
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

/// The largest signal of `y` when it is positive and finite: what
/// [`start_recovery`] starts from.
#[inline(always)]
fn positive_largest(y: &[f64]) -> Option<f64> {
    let max = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (max > 0.0 && max.is_finite()).then_some(max)
}

fn start_recovery(t: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let max = positive_largest(y)?;
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

/// A Newton step this small relative to the rate is the last: taken
/// without another projection (quadratic convergence leaves the rate
/// within about 10⁻¹² of the minimum, beyond the step tolerance's reach).
const PROJECTED_FINAL_STEP: f64 = 1e-6;

/// One curve fitted as the maps fit many ([`fit_batch`] with one lane):
/// the start, the projected search, and Levenberg–Marquardt where the
/// search leaves the curve. `None` without a start, or when `t` and `y`
/// differ in length.
fn one_curve<const P: usize, S: StartRule>(
    basis: Basis,
    t: &[f64],
    y: &[f64],
    lm: FullFit<P>,
) -> Option<Fitted<P>> {
    if t.len() != y.len() {
        return None;
    }
    /// The last table made on this thread: callers of the one-curve fits
    /// fit many curves sampled at the same times, one after another.
    type Cached = Option<((Basis, bool, Vec<f64>), Option<StartTable>)>;
    thread_local! {
        static LAST_TABLE: std::cell::RefCell<Cached> = const { std::cell::RefCell::new(None) };
    }
    let mut answer = None;
    LAST_TABLE.with_borrow_mut(|last| {
        let table = match last {
            Some(((b, offset, times), table))
                if *b == basis && *offset == (P == 3) && times == t =>
            {
                table
            }
            _ => {
                let table = StartTable::new(basis, P == 3, t);
                &mut last.insert(((basis, P == 3, t.to_vec()), table)).1
            }
        };
        fit_batch::<1, P, S>(basis, t, table.as_ref(), y, lm, |_, fit| answer = fit);
    });
    answer
}

/// A model [`fit_curves`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveModel {
    /// [`decay`]
    Decay,
    /// [`decay_with_offset`]
    DecayWithOffset,
    /// [`recovery`]
    Recovery,
    /// [`recovery_with_offset`]
    RecoveryWithOffset,
}

impl CurveModel {
    /// Whether the model has a constant offset.
    pub fn has_offset(self) -> bool {
        matches!(
            self,
            CurveModel::DecayWithOffset | CurveModel::RecoveryWithOffset
        )
    }
}

/// Curves fitted four at a time (see [`lanes`]).
const LANES: usize = 4;

/// Fits one model to many curves sampled at the same times: what the
/// maps run on every voxel of a series. Made once per series (it
/// tabulates where the search starts from, see [`start_table`]), then
/// [`CurveFitter::fit`] as often as there are curves.
#[derive(Debug, Clone)]
pub struct CurveFitter {
    model: CurveModel,
    t: Vec<f64>,
    table: Option<StartTable>,
}

impl CurveFitter {
    /// The fitter of `model` for curves sampled at `t`.
    pub fn new(model: CurveModel, t: &[f64]) -> CurveFitter {
        let basis = match model {
            CurveModel::Decay | CurveModel::DecayWithOffset => Basis::Decay,
            CurveModel::Recovery | CurveModel::RecoveryWithOffset => Basis::Recovery,
        };
        CurveFitter {
            model,
            t: t.to_vec(),
            table: StartTable::new(basis, model.has_offset(), t),
        }
    }

    /// Fits every curve of `curves` (one after another, `t.len()` values
    /// each) into `out` (one per curve; the offset 0 for models without
    /// one): the same answers, bit for bit, as [`decay`],
    /// [`decay_with_offset`], [`recovery`] or [`recovery_with_offset`] on
    /// each curve alone, computed four curves at a time. AVX2 is used where
    /// the processor has it.
    pub fn fit(&self, curves: &[f64], out: &mut [Option<Fitted<3>>]) {
        // No time points, no curves: every answer is `None`, not what
        // `out` held before.
        out.fill(None);
        // At most one curve per answer.
        let curves = &curves[..curves.len().min(out.len() * self.t.len())];
        #[cfg(target_arch = "x86_64")]
        if x86::fit_curves_avx2(self, curves, out) {
            return;
        }
        self.fit_portable(curves, out);
    }

    #[inline(always)]
    pub(crate) fn fit_portable(&self, curves: &[f64], out: &mut [Option<Fitted<3>>]) {
        let widen = |fit: Fitted<2>| Fitted {
            params: [fit.params[0], fit.params[1], 0.0],
            rms: fit.rms,
            converged: fit.converged,
        };
        let (t, table) = (&self.t[..], self.table.as_ref());
        match self.model {
            CurveModel::Decay => fit_batch::<LANES, 2, DecayStart>(
                Basis::Decay,
                t,
                table,
                curves,
                decay_lm,
                |i, fit| out[i] = fit.map(widen),
            ),
            CurveModel::DecayWithOffset => fit_batch::<LANES, 3, DecayStart>(
                Basis::Decay,
                t,
                table,
                curves,
                decay_with_offset_lm,
                |i, fit| out[i] = fit,
            ),
            CurveModel::Recovery => fit_batch::<LANES, 2, RecoveryStart>(
                Basis::Recovery,
                t,
                table,
                curves,
                recovery_lm,
                |i, fit| out[i] = fit.map(widen),
            ),
            CurveModel::RecoveryWithOffset => fit_batch::<LANES, 3, RecoveryStart>(
                Basis::Recovery,
                t,
                table,
                curves,
                recovery_with_offset_lm,
                |i, fit| out[i] = fit,
            ),
        }
    }
}

/// [`CurveFitter::fit`] with a fitter made for this one call.
pub fn fit_curves(model: CurveModel, t: &[f64], curves: &[f64], out: &mut [Option<Fitted<3>>]) {
    CurveFitter::new(model, t).fit(curves, out);
}

/// A model's start, dispatched statically: the fit calls these for every
/// curve, and calls through function pointers were not inlined.
trait StartRule {
    /// The guess of the amplitude and rate from `t` and `y`; `None`: the
    /// curve is not fitted.
    fn guess(t: &[f64], y: &[f64]) -> Option<(f64, f64)>;

    /// Whether the guess exists, where that is cheaper to tell than the
    /// guess (`None`: only the guess tells): then the guess is made only
    /// for the curves that need it (no start from the table, or
    /// Levenberg–Marquardt after the search).
    fn exists(y: &[f64]) -> Option<bool>;
}

/// [`start_decay`]: the log-linear fit.
struct DecayStart;

impl StartRule for DecayStart {
    #[inline(always)]
    fn guess(t: &[f64], y: &[f64]) -> Option<(f64, f64)> {
        start_decay(t, y)
    }

    #[inline(always)]
    fn exists(_: &[f64]) -> Option<bool> {
        None
    }
}

/// [`start_recovery`]: the largest signal and where 63 % of it is reached.
struct RecoveryStart;

impl StartRule for RecoveryStart {
    #[inline(always)]
    fn guess(t: &[f64], y: &[f64]) -> Option<(f64, f64)> {
        start_recovery(t, y)
    }

    #[inline(always)]
    fn exists(y: &[f64]) -> Option<bool> {
        Some(positive_largest(y).is_some())
    }
}

/// A model's Levenberg–Marquardt.
type FullFit<const P: usize> = fn(&[f64], &[f64], [f64; P], Stop) -> Fitted<P>;

/// Start (from `table` where it brackets the minimum, else the model's
/// guess), projected search `L` curves at a time, and Levenberg–Marquardt
/// for the curves the search leaves; `out` gets each curve's answer (`None`
/// without a start), in no particular order.
#[inline(always)]
fn fit_batch<const L: usize, const P: usize, S: StartRule>(
    basis: Basis,
    t: &[f64],
    table: Option<&StartTable>,
    curves: &[f64],
    lm: FullFit<P>,
    out: impl FnMut(usize, Option<Fitted<P>>),
) {
    /// The batch, the starts (for Levenberg–Marquardt's start) and where
    /// the answers go.
    struct Batch<'a, const P: usize, O, S> {
        t: &'a [f64],
        /// Each curve's start from the table, if it has one.
        from_table: Vec<Option<f64>>,
        curves: &'a [f64],
        start: std::marker::PhantomData<S>,
        lm: FullFit<P>,
        /// `None` where the guess was not needed yet.
        starts: Vec<Option<(f64, f64)>>,
        out: O,
    }
    impl<const P: usize, O, S: StartRule> Batch<'_, P, O, S> {
        fn curve(&self, i: usize) -> &[f64] {
            let points = self.t.len();
            &self.curves[i * points..(i + 1) * points]
        }

        /// Levenberg–Marquardt from the guess, for a curve the search left.
        #[cold]
        #[inline(never)]
        fn full_fit(&self, i: usize) -> Option<Fitted<P>> {
            let guess = self.starts[i].or_else(|| S::guess(self.t, self.curve(i)));
            guess.map(|(amplitude, rate)| {
                let mut start = [0.0; P];
                (start[0], start[1]) = (amplitude, rate);
                (self.lm)(self.t, self.curve(i), start, LM_STOP)
            })
        }
    }
    impl<const P: usize, O: FnMut(usize, Option<Fitted<P>>), S: StartRule> lanes::Curves<P>
        for Batch<'_, P, O, S>
    {
        #[inline(always)]
        fn load(&mut self, i: usize, y: &mut [f64]) -> Option<f64> {
            y.copy_from_slice(self.curve(i));
            let from_table = match S::exists(y) {
                Some(false) => {
                    (self.out)(i, None);
                    return None;
                }
                Some(true) => match self.from_table[i] {
                    // The guess waits until LM needs it.
                    Some(rate) => return Some(rate),
                    None => None,
                },
                None => self.from_table[i],
            };
            match S::guess(self.t, y) {
                Some((amplitude, rate)) => {
                    // LM, where the search leaves the curve, starts from
                    // the guess, as before the table.
                    self.starts[i] = Some((amplitude, rate));
                    Some(from_table.unwrap_or(rate))
                }
                None => {
                    (self.out)(i, None);
                    None
                }
            }
        }
        #[inline(always)]
        fn end(&mut self, i: usize, fit: Option<Fitted<P>>) {
            let fit = match fit {
                Some(fit) => Some(fit),
                None => self.full_fit(i),
            };
            (self.out)(i, fit);
        }
    }
    let points = t.len();
    if points == 0 {
        return;
    }
    let count = curves.len() / points;
    // All at once before the search rather than as each lane takes its
    // curve: the curves are independent, so the processor overlaps their
    // (latency-bound) lookups.
    // A plain loop, not an iterator chain: a chain's `fold` was compiled
    // as a function of its own, outside the AVX2 build of this one.
    let mut from_table = vec![None; count];
    if let Some(table) = table {
        for (i, start) in from_table.iter_mut().enumerate() {
            *start = table.rate(&curves[i * points..(i + 1) * points]);
        }
    }
    let mut batch = Batch {
        t,
        from_table,
        curves,
        start: std::marker::PhantomData::<S>,
        lm,
        starts: vec![None; count],
        out,
    };
    lanes::search::<L, P>(basis, t, count, &mut batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The projected search alone on one curve from `start_rate` (no
    /// Levenberg–Marquardt after it): `None` where [`lanes::search`] leaves
    /// the curve to LM.
    fn projected<const P: usize>(
        basis: Basis,
        t: &[f64],
        y: &[f64],
        start_rate: f64,
    ) -> Option<Fitted<P>> {
        if t.len() != y.len() {
            return None;
        }
        /// One curve, its start rate, its answer.
        struct One<'a, const P: usize> {
            y: &'a [f64],
            start_rate: f64,
            answer: Option<Fitted<P>>,
        }
        impl<const P: usize> lanes::Curves<P> for One<'_, P> {
            fn load(&mut self, _: usize, y: &mut [f64]) -> Option<f64> {
                y.copy_from_slice(self.y);
                Some(self.start_rate)
            }
            fn end(&mut self, _: usize, fit: Option<Fitted<P>>) {
                self.answer = fit;
            }
        }
        let mut one = One {
            y,
            start_rate,
            answer: None,
        };
        lanes::search::<1, P>(basis, t, 1, &mut one);
        one.answer
    }

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
        // T2 = 1 ms is the exception: its first echo (10 ms) has decayed to
        // e⁻¹⁰, inside the range the search trusts (to e⁻²⁰), and the exact
        // curve has an exact minimum there. Whether the search reaches it
        // before rounding stops it turns on the last bits of its arithmetic;
        // when it does, the answer is the true minimum (`compare` checks it
        // with a tight LM from there), below where LM stops.
        let far = [0.2, 2_000.0, 20_000.0, 1e6];
        lm_only(sweep(
            &DECAY_WITH_OFFSET,
            &echoes(),
            &far,
            &[0.0],
            1,
            t2_curve,
            30,
        ));
        lm_only(sweep(&DECAY, &echoes(), &far, &[0.0], 1, t2_curve, 31));
        for tally in [
            sweep(
                &DECAY_WITH_OFFSET,
                &echoes(),
                &[1.0],
                &[0.0],
                1,
                t2_curve,
                30,
            ),
            sweep(&DECAY, &echoes(), &[1.0], &[0.0], 1, t2_curve, 31),
        ] {
            assert_eq!(tally.same_minimum, 0, "{tally:?}");
        }
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
        let ys: Vec<[f64; 1]> = y.iter().map(|&v| [v]).collect();
        let mut work = vec![[[0.0; 1]; 3]; t.len()];
        for basis in [Basis::Decay, Basis::Recovery] {
            for offset in [false, true] {
                let mut project = |r: f64| {
                    lanes::project::<1>(basis, offset, &t, &ys, &[r], &mut work)
                        .lane(0)
                        .unwrap()
                };
                let (r, h) = (0.03, 1e-5);
                let (low, mid, high) = (project(r - h).sse, project(r).sse, project(r + h).sse);
                let at = project(r);
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

    /// Curves of every kind the maps meet: noisy ones at many relaxation
    /// times, ones the search leaves to LM (flat, zero, negative, far out
    /// of range), ones without a start (all ≤ 0).
    fn mixed_curves(t: &[f64], recovery: bool, count: usize, seed: u64) -> Vec<f64> {
        let mut noise = Noise(seed);
        let t_max = t.iter().cloned().fold(0.0, f64::max);
        let mut curves = Vec::with_capacity(count * t.len());
        for i in 0..count {
            let time = t_max * 10f64.powf(4.0 * noise.uniform() - 2.5);
            let sigma = [0.0, 2.0, 20.0, 80.0][i % 4];
            for &ti in t {
                let clean = match i % 23 {
                    0 => 500.0,
                    1 => 0.0,
                    2 => -40.0,
                    3 => 100.0 + ti,
                    _ if recovery => t1_curve(ti, time) + 30.0,
                    _ => t2_curve(ti, time),
                };
                curves.push(clean + sigma * noise.gaussian());
            }
        }
        curves
    }

    fn bits(fit: &Option<Fitted<3>>) -> Option<([u64; 3], u64, bool)> {
        fit.map(|f| (f.params.map(f64::to_bits), f.rms.to_bits(), f.converged))
    }

    #[test]
    fn curves_fitted_four_at_a_time_get_the_same_bits_as_one_at_a_time() {
        let echoes = echoes();
        let cases: [(CurveModel, &[f64], bool); 5] = [
            (CurveModel::DecayWithOffset, &echoes, false),
            (CurveModel::Decay, &echoes, false),
            (CurveModel::Decay, &[0.0, 500.0, 1000.0], false),
            (CurveModel::Recovery, &[300.0, 1000.0, 3000.0], true),
            (
                CurveModel::RecoveryWithOffset,
                &[100.0, 400.0, 1000.0, 2500.0, 6000.0],
                true,
            ),
        ];
        for (case, (model, t, rising)) in cases.into_iter().enumerate() {
            // ADC's "times" are b-values: diffusivities around 10⁻³.
            let curves = mixed_curves(t, rising, 2003, 40 + case as u64);
            let count = curves.len() / t.len();
            let mut dispatched = vec![None; count];
            fit_curves(model, t, &curves, &mut dispatched);
            let mut portable = vec![None; count];
            CurveFitter::new(model, t).fit_portable(&curves, &mut portable);
            let mut answered = 0;
            for (i, y) in curves.chunks_exact(t.len()).enumerate() {
                let alone: Option<Fitted<3>> = match model {
                    CurveModel::Decay => decay(t, y).map(|f| Fitted {
                        params: [f.params[0], f.params[1], 0.0],
                        rms: f.rms,
                        converged: f.converged,
                    }),
                    CurveModel::DecayWithOffset => decay_with_offset(t, y),
                    CurveModel::Recovery => recovery(t, y).map(|f| Fitted {
                        params: [f.params[0], f.params[1], 0.0],
                        rms: f.rms,
                        converged: f.converged,
                    }),
                    CurveModel::RecoveryWithOffset => recovery_with_offset(t, y),
                };
                answered += usize::from(alone.is_some());
                assert_eq!(
                    bits(&dispatched[i]),
                    bits(&alone),
                    "{model:?} curve {i}: {y:?}"
                );
                assert_eq!(
                    bits(&portable[i]),
                    bits(&alone),
                    "{model:?} curve {i}: {y:?}"
                );
            }
            assert!(answered > count / 2, "{model:?}: {answered} of {count}");
        }
    }
}
