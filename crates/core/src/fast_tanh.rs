//! A fast, vectorisable `tanh` for `f32` and `f64`, built on [`fast_exp`](crate::fast_exp).
//!
//! `std`'s `tanh` is a call into the platform's math library per element. The tanh cells
//! of the language model apply it to every hidden unit of every step, on the sequential part
//! of the step that no second core can share, so this module computes it, like the
//! exponential, from multiplies, adds, a division, comparisons and bit operations only.
//!
//! Method: `tanh` is odd, so with `a = |x|`:
//! - for `a < 0.55`, `tanh x = x + x³·P(x²)`, with `P` of degree 9 (`f64`) or 3 (`f32`)
//!   fitted for relative error by `scripts/tanh_fit.py` (at most 1 ulp, measured there in
//!   50-digit arithmetic);
//! - for `a ≥ 0.55`, `tanh a = 1 − 2/(e^(2a) + 1)` with the sign of `x` restored. As
//!   `tanh 0.55 ≈ 0.5`, the subtraction loses at most about one bit.
//!
//! Both are computed and one is selected, so a loop over a slice compiles to SIMD code.
//! Accuracy (this module's tests, against `std`): within 2 ulp for `f64` and 1 ulp for `f32`
//! (`std` itself is within 1 ulp of the exact value). `tanh(±0) = ±0`, `tanh(±∞) = ±1`,
//! and NaN gives NaN.
//!
//! ```
//! use recur_core::fast_tanh::{tanh_f32, tanh_f64};
//!
//! assert_eq!(tanh_f64(0.0), 0.0);
//! assert!((tanh_f64(0.5) - 0.5_f64.tanh()).abs() < 1e-16);
//! assert_eq!(tanh_f32(-30.0), -1.0);
//! assert!(tanh_f64(f64::NAN).is_nan());
//! ```

use crate::fast_exp::{by_precision, exp_f32, exp_f64};
use crate::Float;

/// Below this magnitude the polynomial is used, from it on the exponential.
const SMALL: f64 = 0.55;

/// `P(s)` for `f64`, lowest degree first: `tanh x = x + x³·P(x²)` for `|x| < 0.55`
/// (`python3 scripts/tanh_fit.py 0.55 9 f64`).
const P_F64: [f64; 10] = [
    -0.333_333_333_333_322_5,
    0.133_333_333_331_616_82,
    -0.053_968_253_873_171_38,
    0.021_869_485_914_001_53,
    -0.008_863_193_772_024_347,
    0.003_591_714_312_772_492_6,
    -0.001_453_192_166_023_287_9,
    0.000_579_068_974_688_071_6,
    -0.000_210_197_945_333_203_56,
    5.095_320_831_345_608e-5,
];

/// `P(s)` for `f32` (`python3 scripts/tanh_fit.py 0.55 3 f32`).
const P_F32: [f32; 4] = [-0.333_329_3, 0.133_204_23, -0.052_655_603, 0.016_410_815];

/// `tanh x` for `f64`, within 2 ulp of `std`'s, branch-free so loops over it vectorise.
///
/// ```
/// use recur_core::fast_tanh::tanh_f64;
/// assert_eq!(tanh_f64(f64::NEG_INFINITY), -1.0);
/// assert!((tanh_f64(2.0) - 2.0_f64.tanh()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let s = x * x;
    let p = P_F64.iter().rev().fold(0.0, |p, &c| p * s + c);
    // The sign is copied so that tanh(−0) = −0 (the sum would give +0).
    let small = (x + x * s * p).copysign(x);
    let a = x.abs();
    let large = (1.0 - 2.0 / (exp_f64(2.0 * a) + 1.0)).copysign(x);
    if a < SMALL {
        small
    } else {
        large
    }
}

/// `tanh x` for `f32`, within 1 ulp of `std`'s, branch-free so loops over it vectorise.
///
/// ```
/// use recur_core::fast_tanh::tanh_f32;
/// assert_eq!(tanh_f32(f32::INFINITY), 1.0);
/// assert!((tanh_f32(0.25) - 0.25_f32.tanh()).abs() < 1e-7);
/// ```
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let s = x * x;
    let p = P_F32.iter().rev().fold(0.0, |p, &c| p * s + c);
    let small = (x + x * s * p).copysign(x);
    let a = x.abs();
    let large = (1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0)).copysign(x);
    if a < SMALL as f32 {
        small
    } else {
        large
    }
}

/// `tanh x` for any [`Float`]: [`tanh_f32`] when `F` has no more precision than `f32`,
/// [`tanh_f64`] otherwise (a choice on constants of `F`, free after monomorphisation).
///
/// ```
/// use recur_core::fast_tanh::tanh;
/// assert_eq!(tanh(0.0_f32), 0.0);
/// assert!((tanh(1.0_f64) - 1.0_f64.tanh()).abs() < 1e-15);
/// ```
#[inline(always)]
pub fn tanh<F: Float>(x: F) -> F {
    by_precision(x, tanh_f32, tanh_f64)
}

#[cfg(test)]
// Exact comparisons are deliberate: special values and signed zeros.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    /// Distance in ulp between two values of the same sign.
    fn ulps_f64(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn f64_within_2_ulp_of_std() {
        // An irrational step, dense near the switch at 0.55 and out to saturation, plus tiny
        // arguments and both sides of the switch.
        let grid =
            (-2_000_000..=2_000_000).map(|i| f64::from(i) * 1e-5 * std::f64::consts::FRAC_1_SQRT_2);
        let edges = [1e-300, 1e-20, 1e-8, 0.549_999_999, 0.55, 0.550_000_001];
        let mut worst = (0, 0.0);
        for x in grid.chain(edges).chain(edges.map(|x| -x)) {
            let ulp = ulps_f64(tanh_f64(x), x.tanh());
            if ulp > worst.0 {
                worst = (ulp, x);
            }
        }
        println!("tanh_f64: max {} ulp at {}", worst.0, worst.1);
        assert!(worst.0 <= 2, "max {} ulp at {}", worst.0, worst.1);
    }

    #[test]
    fn f32_within_1_ulp_of_the_rounded_f64_result() {
        let mut worst = (0, 0.0);
        for i in -400_000..=400_000 {
            let x = i as f32 * 5e-5;
            let reference = f64::from(x).tanh() as f32;
            let ulp = tanh_f32(x).to_bits().abs_diff(reference.to_bits());
            if ulp > worst.0 {
                worst = (ulp, x);
            }
        }
        println!("tanh_f32: max {} ulp at {}", worst.0, worst.1);
        assert!(worst.0 <= 1, "max {} ulp at {}", worst.0, worst.1);
    }

    #[test]
    fn special_values() {
        assert_eq!(tanh_f64(0.0).to_bits(), 0.0_f64.to_bits());
        assert_eq!(tanh_f64(-0.0).to_bits(), (-0.0_f64).to_bits());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0_f32).to_bits());
        for big in [20.0, 400.0, 1e300, f64::INFINITY] {
            assert_eq!(tanh_f64(big), 1.0);
            assert_eq!(tanh_f64(-big), -1.0);
        }
        for big in [10.0_f32, 100.0, f32::MAX, f32::INFINITY] {
            assert_eq!(tanh_f32(big), 1.0);
            assert_eq!(tanh_f32(-big), -1.0);
        }
        assert!(tanh_f64(f64::NAN).is_nan());
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh(0.3_f64), tanh_f64(0.3));
        assert_eq!(tanh(0.3_f32), tanh_f32(0.3));
    }

    #[test]
    fn odd_to_the_bit() {
        for i in 0..10_000 {
            let x = f64::from(i) * 1.3e-3;
            assert_eq!(tanh_f64(-x).to_bits(), (-tanh_f64(x)).to_bits(), "x = {x}");
            let x = x as f32;
            assert_eq!(tanh_f32(-x).to_bits(), (-tanh_f32(x)).to_bits(), "x = {x}");
        }
    }
}
