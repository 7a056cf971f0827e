//! The lane fits compiled for AVX2, chosen at run time: the one place in
//! this crate with `unsafe` (calling a `#[target_feature]` function).

use super::{CurveModel, Fitted, fit_curves_portable};

/// Runs [`fit_curves_portable`] compiled for AVX2 if the processor has it;
/// `false` (nothing done) if not. The lanes' arithmetic is the same
/// operations in wider registers (no FMA), so the answers are the same
/// bits either way.
pub(super) fn fit_curves_avx2(
    model: CurveModel,
    t: &[f64],
    curves: &[f64],
    out: &mut [Option<Fitted<3>>],
) -> bool {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the processor has AVX2, checked just above.
    unsafe { with_avx2(model, t, curves, out) };
    true
}

#[target_feature(enable = "avx2")]
fn with_avx2(model: CurveModel, t: &[f64], curves: &[f64], out: &mut [Option<Fitted<3>>]) {
    fit_curves_portable(model, t, curves, out);
}
