//! The projected search of [`super`] run on `L` curves at once.
//!
//! Each lane holds one voxel's curve and follows exactly the steps the
//! search takes for that voxel alone: the rate it evaluates next, the
//! steps it accepts or halves, when it stops. Only the projection — the
//! exponentials and inner products, nearly all of the work — is computed
//! for every lane together, as `[f64; L]` arrays that the compiler turns
//! into vector instructions. A lane whose voxel is done takes the next
//! voxel at once, so lanes stay busy whatever each voxel's step count.
//!
//! The arithmetic of a lane is the same sequence of IEEE operations as
//! with `L = 1` (no fused multiply–add: Rust never contracts `a·b + c`),
//! so a voxel gets the same bits whichever way it was fitted; the tests
//! check that. The one-curve functions of [`super`] use `L = 1`.

use super::exp::exp_lanes;
use super::{
    Basis, Fitted, LM_STOP, PROJECTED_FINAL_STEP, PROJECTED_GAIN_TOLERANCE, PROJECTED_HALVINGS,
    PROJECTED_ITERATIONS, PROJECTED_STEP_TOLERANCE,
};

/// The amplitudes that fit best at one rate, and what the search needs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Projection {
    pub(super) rate: f64,
    pub(super) amplitude: f64,
    pub(super) offset: f64,
    pub(super) sse: f64,
    /// `−½ dF/dr` of the projected sum of squares `F(r)` (`Σ ρ·∂f/∂r`).
    pub(super) slope: f64,
    /// `½ d²F/dr²`: the Newton curvature.
    pub(super) curvature: f64,
    /// The curvature the search steps with: Newton's, or where `F` is not
    /// convex the Gauss–Newton curvature `|P⊥ ∂f/∂r|²` (never negative);
    /// and its step `slope / it`.
    newton_curvature: f64,
    newton_step: f64,
    /// How the amplitude and the offset change with the rate (`dc/dr` at
    /// fixed data), for a last step taken without projecting again.
    amplitude_rate: f64,
    offset_rate: f64,
    /// The smallest and largest value of the basis over the time points.
    low: f64,
    high: f64,
}

/// Least squares of the amplitude (and the offset) at each lane's rate:
/// closed form, as the model is linear in them, with the first two
/// derivatives of the sum of squares left at that amplitude. `ys[k]` holds
/// each lane's signal at `t[k]`; `work` keeps the basis and its first two
/// rate derivatives per time point between the passes.
#[inline(always)]
pub(super) fn project<const L: usize>(
    basis: Basis,
    offset: bool,
    t: &[f64],
    ys: &[[f64; L]],
    rate: &[f64; L],
    work: &mut [[[f64; L]; 3]],
) -> Projections<L> {
    let n = t.len() as f64;
    // Recovery's basis is 1 − e and its derivatives change sign: exact
    // either way (adding 0, multiplying by ±1), and free of a branch.
    let (base, sign) = match basis {
        Basis::Decay => (0.0, 1.0),
        Basis::Recovery => (1.0, -1.0),
    };
    let mut low = [f64::INFINITY; L];
    let mut high = [f64::NEG_INFINITY; L];
    for (&ti, slot) in t.iter().zip(work.iter_mut()) {
        let mut x = [0.0; L];
        for l in 0..L {
            x[l] = -rate[l] * ti;
        }
        let e = exp_lanes(x);
        for l in 0..L {
            let e = e[l];
            let (de, dde) = (-ti * e, ti * ti * e);
            let b = base + sign * e;
            slot[0][l] = b;
            slot[1][l] = sign * de;
            slot[2][l] = sign * dde;
            low[l] = low[l].min(b);
            high[l] = high[l].max(b);
        }
    }
    // With an offset, centring every column removes the constant exactly
    // (no 2×2 system to lose digits in when the basis is nearly flat); the
    // centring does not depend on the rate, so derivatives commute with it.
    let mut mean = [[0.0; L]; 4];
    if offset {
        for (slot, y) in work.iter().zip(ys) {
            for l in 0..L {
                mean[0][l] += slot[0][l];
                mean[1][l] += slot[1][l];
                mean[2][l] += slot[2][l];
                mean[3][l] += y[l];
            }
        }
        for m in &mut mean {
            for v in m.iter_mut() {
                *v /= n;
            }
        }
    }
    // Inner products of the centred basis p, its derivatives d, q, and
    // the centred data z.
    let [
        mut pp,
        mut pz,
        mut dz,
        mut pd,
        mut qz,
        mut dd,
        mut pq,
        mut raw,
    ] = [[0.0; L]; 8];
    for (slot, y) in work.iter().zip(ys) {
        for l in 0..L {
            let (p, d, q, z) = (
                slot[0][l] - mean[0][l],
                slot[1][l] - mean[1][l],
                slot[2][l] - mean[2][l],
                y[l] - mean[3][l],
            );
            pp[l] += p * p;
            pz[l] += p * z;
            dz[l] += d * z;
            pd[l] += p * d;
            qz[l] += q * z;
            dd[l] += d * d;
            pq[l] += p * q;
            raw[l] += slot[0][l] * slot[0][l];
        }
    }
    let mut c = [0.0; L];
    for l in 0..L {
        c[l] = pz[l] / pp[l];
    }
    let mut sse = [0.0; L];
    for (slot, y) in work.iter().zip(ys) {
        for l in 0..L {
            let residual = (y[l] - mean[3][l]) - c[l] * (slot[0][l] - mean[0][l]);
            sse[l] += residual * residual;
        }
    }
    // Every lane's numbers first, in loops the compiler vectorises (the
    // divisions especially), then each lane's verdict.
    let [
        mut slope,
        mut curvature,
        mut gauss_newton,
        mut used,
        mut step,
        mut offset_value,
        mut amplitude_rate,
        mut offset_rate,
    ] = [[0.0; L]; 8];
    for l in 0..L {
        let (c, dz, pd) = (c[l], dz[l], pd[l]);
        let (dz_pp, pd_pp) = (dz / pp[l], pd / pp[l]);
        // F = z·z − (p·z)²/(p·p), differentiated twice in r.
        slope[l] = c * (dz - c * pd);
        curvature[l] = -dz * dz_pp - c * qz[l] + 4.0 * c * dz * pd_pp + c * c * (dd[l] + pq[l])
            - 4.0 * c * c * pd * pd_pp;
        gauss_newton[l] = c * c * (dd[l] - pd * pd_pp);
        // Newton's step (quadratic convergence even with the large
        // residuals of noisy data, where Gauss–Newton gains about a digit
        // a step); Gauss–Newton's where F is not convex.
        used[l] = if curvature[l] > 0.0 {
            curvature[l]
        } else {
            gauss_newton[l]
        };
        step[l] = slope[l] / used[l];
        // c = p·z / p·p, whose rate derivative has d·z and p·d.
        amplitude_rate[l] = dz_pp - 2.0 * c * pd_pp;
        (offset_value[l], offset_rate[l]) = if offset {
            (
                mean[3][l] - c * mean[0][l],
                -(amplitude_rate[l] * mean[0][l] + c * mean[1][l]),
            )
        } else {
            (0.0, 0.0)
        };
    }
    let mut ok = [false; L];
    for l in 0..L {
        // A basis that is (numerically) constant cannot be told apart from
        // the offset, or vanishes: the amplitude is not determined.
        let determined = pp[l] > 1e-16 * raw[l] && pp[l].is_finite();
        ok[l] = determined && sse[l].is_finite() && c[l].is_finite() && offset_value[l].is_finite();
    }
    Projections {
        ok,
        rate: *rate,
        amplitude: c,
        offset: offset_value,
        sse,
        slope,
        curvature,
        newton_curvature: used,
        newton_step: step,
        amplitude_rate,
        offset_rate,
        low,
        high,
    }
}

/// [`Projection`]s of `L` lanes, field by field: a lane's is copied out
/// only when the search keeps it (copying every lane's whole projection
/// each round cost more than some of the arithmetic).
pub(super) struct Projections<const L: usize> {
    /// Whether the lane's projection is determined and finite.
    ok: [bool; L],
    rate: [f64; L],
    amplitude: [f64; L],
    offset: [f64; L],
    sse: [f64; L],
    slope: [f64; L],
    curvature: [f64; L],
    newton_curvature: [f64; L],
    newton_step: [f64; L],
    amplitude_rate: [f64; L],
    offset_rate: [f64; L],
    low: [f64; L],
    high: [f64; L],
}

impl<const L: usize> Projections<L> {
    /// Lane `l`'s projection; `None` where its amplitude is not determined
    /// or its numbers are not finite.
    #[inline(always)]
    pub(super) fn lane(&self, l: usize) -> Option<Projection> {
        self.ok[l].then(|| self.at(l))
    }

    /// Lane `l`'s numbers, whether determined or not.
    #[inline(always)]
    fn at(&self, l: usize) -> Projection {
        Projection {
            rate: self.rate[l],
            amplitude: self.amplitude[l],
            offset: self.offset[l],
            sse: self.sse[l],
            slope: self.slope[l],
            curvature: self.curvature[l],
            newton_curvature: self.newton_curvature[l],
            newton_step: self.newton_step[l],
            amplitude_rate: self.amplitude_rate[l],
            offset_rate: self.offset_rate[l],
            low: self.low[l],
            high: self.high[l],
        }
    }
}

/// Where the projected search trusts its answer, from the time points.
#[derive(Debug, Clone, Copy)]
struct Range {
    /// T beyond 10× the longest time is invalid in the maps; from 5× on,
    /// amplitude and offset trade off so strongly that LM has run out of
    /// iterations (invalid) on curves whose minimum the projection reaches
    /// (2 voxels of 726 663 in bench/maps.sh's T2 series): LM decides those
    /// voxels, as before.
    slowest: f64,
    /// `e^(−r·t_min)` below e^−20 (2·10⁻⁹): the first point has decayed
    /// (or recovered) completely, the amplitude is barely determined.
    fastest: f64,
}

impl Range {
    /// `None` when no curve sampled at `t` can be searched this way.
    fn of<const P: usize>(t: &[f64]) -> Option<Range> {
        let t_max = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let t_min = t.iter().cloned().fold(f64::INFINITY, f64::min);
        if !(P == 2 || P == 3) || t.len() < P || !(t_max > 0.0 && t_min >= 0.0) {
            return None;
        }
        Some(Range {
            slowest: 0.2 / t_max,
            fastest: if t_min > 0.0 {
                20.0 / t_min
            } else {
                f64::INFINITY
            },
        })
    }

    /// The answer, if the minimum `at` lies where the projection is
    /// trusted.
    #[inline(always)]
    fn finish<const P: usize>(&self, at: &Projection, points: usize) -> Option<Fitted<P>> {
        if !(at.rate >= self.slowest && at.rate <= self.fastest && at.amplitude > 0.0) {
            return None;
        }
        // A change over the sampled times smaller than the residual is a
        // fit to noise (a flat curve has such minima next to LM's): the
        // rate is not determined by the data, LM decides as before.
        // (Compared squared: no square root on the way.)
        let mean_square = at.sse / points as f64;
        let change = at.amplitude * (at.high - at.low);
        if change.is_nan() || change <= 0.0 || change * change <= mean_square {
            return None;
        }
        // The rate's standard error (noise from the residual, sensitivity
        // from the curvature) above the rate itself: the data do not
        // determine it. Levenberg–Marquardt often runs out of iterations on
        // such curves (not converged: invalid), so it keeps deciding them.
        // (Squared: error² = sse/dof/curvature ≤ rate².)
        let dof = points.saturating_sub(P).max(1) as f64;
        if !(at.curvature > 0.0 && at.sse / dof <= at.rate * at.rate * at.curvature) {
            return None;
        }
        let rms = mean_square.sqrt();
        let mut params = [0.0; P];
        params[0] = at.amplitude;
        params[1] = at.rate;
        if P == 3 {
            params[2] = at.offset;
        }
        Some(Fitted {
            params,
            rms,
            converged: true,
        })
    }
}

/// What a lane does with its next projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No voxel.
    Idle,
    /// The projection at the start rate is next.
    Start,
    /// The projection at `at.rate + step` is next.
    Trial,
}

/// One voxel's search.
#[derive(Debug, Clone, Copy)]
struct Lane {
    voxel: usize,
    phase: Phase,
    /// The point reached.
    at: Projection,
    step: f64,
    /// The fall of the sum of squares the full step predicts.
    predicted_gain: f64,
    /// Accepted steps.
    iterations: usize,
    /// Halvings of the current step.
    halvings: usize,
}

const IDLE: Lane = Lane {
    voxel: usize::MAX,
    phase: Phase::Idle,
    at: Projection {
        rate: 0.0,
        amplitude: 0.0,
        offset: 0.0,
        sse: 0.0,
        slope: 0.0,
        curvature: 0.0,
        newton_curvature: 0.0,
        newton_step: 0.0,
        amplitude_rate: 0.0,
        offset_rate: 0.0,
        low: 0.0,
        high: 0.0,
    },
    step: 0.0,
    predicted_gain: 0.0,
    iterations: 0,
    halvings: 0,
};

/// How a lane's search went on after a projection.
enum Next {
    /// Evaluate this rate next.
    Evaluate(f64),
    /// The search converged at `at`; [`Range::finish`] judges the answer.
    Converged,
    /// The search failed: the caller runs Levenberg–Marquardt.
    Failed,
}

impl Lane {
    /// The step from `at` ([`project`] says which). `Converged` when the
    /// search has converged at `at`.
    #[inline(always)]
    fn decide(&mut self) -> Next {
        let at = self.at;
        let curvature = at.newton_curvature;
        if curvature.is_nan() || curvature <= 0.0 {
            return Next::Failed;
        }
        let step = at.newton_step;
        if !step.is_finite() {
            return Next::Failed;
        }
        // Newton's step converges quadratically near the minimum: after a
        // step this small the rate is within about the step's square of
        // it, closer than the step tolerance below gets. The step is taken
        // (even one below that tolerance: it is free) without projecting
        // again, which would only confirm it: the amplitude, offset and sum
        // of squares follow to first and second order, within the rounding
        // of the f32 maps.
        if at.newton_curvature == at.curvature && step.abs() <= PROJECTED_FINAL_STEP * at.rate {
            let mut last = at;
            last.rate = at.rate + step;
            last.amplitude = at.amplitude + at.amplitude_rate * step;
            last.offset = at.offset + at.offset_rate * step;
            last.sse = (at.sse - 2.0 * at.slope * step + at.curvature * step * step).max(0.0);
            self.at = last;
            return Next::Converged;
        }
        // Converged: a tiny step, or one whose predicted fall of the sum of
        // squares is below its rounding.
        if step.abs() <= PROJECTED_STEP_TOLERANCE * at.rate
            || at.slope * step <= PROJECTED_GAIN_TOLERANCE * at.sse
        {
            return Next::Converged;
        }
        // A step far from the minimum can overshoot through zero; the rate
        // moves by at most a factor of ten per step.
        self.step = step.clamp(-0.9 * at.rate, 9.0 * at.rate);
        self.predicted_gain = at.slope * self.step;
        self.halvings = 0;
        self.phase = Phase::Trial;
        Next::Evaluate(at.rate + self.step)
    }

    /// The search after lane `l`'s projection in `projections`.
    #[inline(always)]
    fn advance<const L: usize>(
        &mut self,
        projections: &Projections<L>,
        l: usize,
        range: &Range,
    ) -> Next {
        match self.phase {
            Phase::Idle => Next::Failed,
            Phase::Start => match projections.lane(l) {
                Some(at) => {
                    self.at = at;
                    self.iterations = 0;
                    self.decide()
                }
                None => Next::Failed,
            },
            // Every accepted step lowers the sum of squares.
            Phase::Trial => match projections.ok[l] && projections.sse[l] <= self.at.sse {
                true => {
                    let trial = projections.at(l);
                    self.at = trial;
                    // Far outside the determined range the search would
                    // only creep towards zero or infinity: LM decides
                    // those voxels.
                    if trial.rate < 0.01 * range.slowest || trial.rate > 2.5 * range.fastest {
                        return Next::Failed;
                    }
                    self.iterations += 1;
                    if self.iterations == PROJECTED_ITERATIONS {
                        return Next::Failed;
                    }
                    self.decide()
                }
                false => {
                    self.step *= 0.5;
                    self.halvings += 1;
                    if self.halvings < PROJECTED_HALVINGS {
                        return Next::Evaluate(self.at.rate + self.step);
                    }
                    // Rounding hides any further fall of the sum of squares
                    // (LM stops on a relative fall of 10⁻¹², or on no
                    // downhill step).
                    if self.predicted_gain <= LM_STOP.gain * self.at.sse {
                        Next::Converged
                    } else {
                        Next::Failed
                    }
                }
            },
        }
    }
}

/// The curves a [`search`] fits, and where its answers go.
pub(super) trait Curves<const P: usize> {
    /// Writes curve `i` into `y` and returns its start rate, or `None` when
    /// the curve is not to be searched (this has dealt with it).
    fn load(&mut self, i: usize, y: &mut [f64]) -> Option<f64>;
    /// Curve `i`'s answer (`None`: the search failed, see [`search`]).
    fn end(&mut self, i: usize, fit: Option<Fitted<P>>);
}

/// Variable projection for `count` curves sampled at `t`: the amplitude
/// (and offset, `P = 3`) are solved for in closed form at each rate, and
/// only the rate is searched, by safeguarded Newton from the start rate
/// (every accepted step lowers the sum of squares).
///
/// [`Curves::load`] gives the curves and [`Curves::end`] takes each
/// searched curve's answer, in no particular order: `None` when the search
/// fails (no descent, no convergence, a degenerate basis, a start rate
/// that is not positive), and also when the minimum
/// found is one the maps flag invalid anyway (rate ≤ 0, amplitude ≤ 0), or
/// one the data barely determine: relaxation time beyond five times the
/// longest time, a first time point all but fully decayed (or recovered),
/// a modelled change below the residual, a standard error of the rate above
/// the rate. There the full-parameter search can end elsewhere or not
/// converge (invalid), and the caller's Levenberg–Marquardt decides.
#[inline(always)]
pub(super) fn search<const L: usize, const P: usize>(
    basis: Basis,
    t: &[f64],
    count: usize,
    curves: &mut impl Curves<P>,
) {
    let points = t.len();
    let mut y = vec![0.0; points];
    let Some(range) = Range::of::<P>(t) else {
        for i in 0..count {
            if curves.load(i, &mut y).is_some() {
                curves.end(i, None);
            }
        }
        return;
    };
    let offset = P == 3;
    let mut ys = vec![[0.0; L]; points];
    let mut work = vec![[[0.0; L]; 3]; points];
    let mut lanes = [IDLE; L];
    // Idle lanes keep projecting their last curve at their last rate: the
    // results are not looked at.
    let mut rate = [1.0; L];
    let mut next = 0;
    loop {
        for (l, lane) in lanes.iter_mut().enumerate() {
            while lane.phase == Phase::Idle && next < count {
                let i = next;
                next += 1;
                let Some(start) = curves.load(i, &mut y) else {
                    continue;
                };
                if !(start > 0.0 && start.is_finite()) {
                    curves.end(i, None);
                    continue;
                }
                for (column, &v) in ys.iter_mut().zip(&y) {
                    column[l] = v;
                }
                *lane = Lane {
                    voxel: i,
                    phase: Phase::Start,
                    ..IDLE
                };
                rate[l] = start;
            }
        }
        if lanes.iter().all(|lane| lane.phase == Phase::Idle) {
            return;
        }
        let projections = project::<L>(basis, offset, t, &ys, &rate, &mut work);
        for (l, lane) in lanes.iter_mut().enumerate() {
            if lane.phase == Phase::Idle {
                continue;
            }
            match lane.advance(&projections, l, &range) {
                Next::Evaluate(r) => rate[l] = r,
                Next::Converged => {
                    curves.end(lane.voxel, range.finish::<P>(&lane.at, points));
                    *lane = IDLE;
                }
                Next::Failed => {
                    curves.end(lane.voxel, None);
                    *lane = IDLE;
                }
            }
        }
    }
}
