//! The lane fits compiled for AVX2, chosen at run time: the one place in
//! this crate with `unsafe` (calling a `#[target_feature]` function).

use super::{CurveFitter, Fitted};

/// Runs [`CurveFitter::fit_portable`] compiled for AVX2 if the processor
/// has it; `false` (nothing done) if not. The lanes' arithmetic is the
/// same operations in wider registers (no FMA), so the answers are the
/// same bits either way.
pub(super) fn fit_curves_avx2(
    fitter: &CurveFitter,
    curves: &[f64],
    out: &mut [Option<Fitted<3>>],
) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the processor has AVX2, checked just above.
    unsafe { with_avx2(fitter, curves, out) };
    true
}

#[target_feature(enable = "avx2")]
fn with_avx2(fitter: &CurveFitter, curves: &[f64], out: &mut [Option<Fitted<3>>]) {
    fitter.fit_portable(curves, out);
}
