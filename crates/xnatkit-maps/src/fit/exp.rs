//! The exponential the projected fits use.
//!
//! Written here rather than taken from the platform's libm for two
//! reasons: it has no branches and no calls, so four voxels' exponentials
//! compile to one vector sequence (libm's `exp` is a call per value); and
//! it is the same arithmetic on every machine and every code path, so a
//! map is the same bytes whether it was fitted four voxels at a time with
//! AVX2, two at a time with SSE2, or one at a time.

/// `1.5·2⁵²`: adding it rounds a double of magnitude below 2⁵¹ to an
/// integer (to nearest, ties to even) held in the low mantissa bits.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// ln 2 split (as in fdlibm): the high part has 32 trailing zero bits, so
/// `k·LN2_HI` is exact for every `k` used here.
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// Below this `e^x` is under the smallest normal double; the result is 0.
const LOWEST: f64 = -708.0;
/// Above this `e^x` overflows; the result is +∞.
const HIGHEST: f64 = 709.0;

/// `e^x` to within a few units in the last place for `x` in
/// [−708, 709]; 0 below, +∞ above, NaN for NaN.
#[cfg(test)]
fn exp(x: f64) -> f64 {
    exp_lanes([x])[0]
}

/// [`exp`] of each lane. Every step is a loop over the lanes, which the
/// compiler makes one vector instruction (per register's worth of lanes).
///
/// `x = k·ln 2 + r` with `|r| ≤ ½ ln 2`, `e^r` by its Taylor series to
/// `r¹²` (the next term is below 2·10⁻¹⁶ relative; 12! fits in a u32), times `2^k` built in
/// the exponent bits.
#[inline(always)]
pub(crate) fn exp_lanes<const L: usize>(x: [f64; L]) -> [f64; L] {
    let mut clamped = [0.0; L];
    let mut shifted = [0.0; L];
    let mut r = [0.0; L];
    for l in 0..L {
        clamped[l] = x[l].clamp(LOWEST, HIGHEST);
        shifted[l] = clamped[l] * std::f64::consts::LOG2_E + ROUND;
        let k = shifted[l] - ROUND;
        r[l] = (clamped[l] - k * LN2_HI) - k * LN2_LO;
    }
    // Estrin's scheme: the powers of r and the pairs of terms are
    // independent, so the chain of dependent operations is 8 long where
    // Horner's is 24 (the fits are bound by it).
    let c = |i: u32| 1.0 / (1..=i).product::<u32>() as f64;
    let mut p = [0.0; L];
    for l in 0..L {
        let r = r[l];
        let r2 = r * r;
        let r4 = r2 * r2;
        let r8 = r4 * r4;
        let s0 = (c(0) + c(1) * r) + (c(2) + c(3) * r) * r2;
        let s1 = (c(4) + c(5) * r) + (c(6) + c(7) * r) * r2;
        let s2 = (c(8) + c(9) * r) + (c(10) + c(11) * r) * r2;
        p[l] = (s0 + s1 * r4) + (s2 + c(12) * r4) * r8;
    }
    let mut out = [0.0; L];
    for l in 0..L {
        // The low 12 bits of `shifted` are k's (two's complement; 2⁵¹ adds
        // none): k + 1023 (1..=2046 here) shifted into the exponent field.
        let scale = f64::from_bits(shifted[l].to_bits().wrapping_add(1023) << 52);
        // Out of range by a factor rather than a branch, so that every
        // lane's value is computed and the lanes stay one vector (NaN
        // stays NaN: both comparisons are false).
        let factor = if x[l] < LOWEST {
            0.0
        } else if x[l] > HIGHEST {
            f64::INFINITY
        } else {
            1.0
        };
        out[l] = p[l] * scale * factor;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_libm_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -708.0;
        while x <= 709.0 {
            for dx in [0.0, 1e-9, 0.3465735902799726, 0.5] {
                let v = x + dx;
                if v > 709.0 {
                    continue;
                }
                let (ours, libm) = (exp(v), v.exp());
                worst = worst.max(((ours - libm) / libm).abs());
            }
            x += 0.0137;
        }
        for v in [0.0, -0.0, 1e-300, -1e-300, 1.0, -1.0, 0.5, -0.5, -20.0] {
            let (ours, libm) = (exp(v), v.exp());
            worst = worst.max(((ours - libm) / libm).abs());
        }
        assert!(worst < 1e-15, "relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn ends_of_the_range() {
        assert_eq!(exp(-709.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert!(exp(-708.0) > 0.0 && exp(-708.0).is_normal());
        assert!(exp(709.0).is_finite());
    }
}
