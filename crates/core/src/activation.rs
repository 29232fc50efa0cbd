//! Element-wise activation functions and their derivatives.
//!
//! Each activation is a small `Copy` type (zero-sized unless it has a parameter), so a
//! cell generic over it, such as `Elman<F, Tanh>`, compiles to straight-line code. The
//! trait is object safe, so `&dyn Activation<F>` works too.
//!
//! Derivatives are written in terms of the stored output `y = f(x)` wherever that is
//! enough (`tanh' = 1 − y²`, `σ' = y(1 − y)`), which is why the backward pass of a cell
//! needs to keep only its outputs. An activation whose derivative needs the input says
//! so with [`Activation::needs_input`], and cells then keep the pre-activation as well.

use recur_linalg::{run_wide, Isa, WideLoop};
use serde::{Deserialize, Serialize};

use crate::{fast_exp, fast_tanh, Float};

/// An element-wise function `y = f(x)` with its derivative.
pub trait Activation<F: Float>: std::fmt::Debug + Send + Sync {
    /// Short lower-case name, as written in checkpoints (`"tanh"`).
    fn name(&self) -> &'static str;

    /// `f(x)`.
    fn apply(&self, x: F) -> F;

    /// `f'(x)`, given both the input `x` and the output `y = f(x)`.
    ///
    /// When [`Activation::needs_input`] is `false`, callers may pass `y` in place of `x`.
    fn derivative(&self, x: F, y: F) -> F;

    /// Whether [`Activation::derivative`] reads `x`. Default `false`: the output suffices.
    fn needs_input(&self) -> bool {
        false
    }
}

/// Applies `act` to every element of `values` in place.
///
/// The loop is compiled for the widest vectors the CPU has ([`run_wide`]): with a
/// branch-free activation such as [`Sigmoid`] it runs 8 `f64` lanes wide on AVX-512, with the
/// same results as elementwise [`Activation::apply`].
#[inline]
pub fn apply_in_place<F: Float, A: Activation<F> + ?Sized>(act: &A, values: &mut [F]) {
    /// The loop, as a unit that can be compiled for several instruction sets.
    struct Apply<'a, F, A: ?Sized> {
        act: &'a A,
        values: &'a mut [F],
    }

    impl<F: Float, A: Activation<F> + ?Sized> WideLoop for Apply<'_, F, A> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            for v in self.values {
                *v = self.act.apply(*v);
            }
        }
    }

    run_wide(Isa::detect(), Apply { act, values });
}

/// Hyperbolic tangent; `f'(x) = 1 − y²`.
///
/// Computed by [`fast_tanh::tanh`] (within 2 ulp of `std`'s), branch-free, so a loop
/// applying it over a slice ([`apply_in_place`]) compiles to SIMD code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tanh;

impl<F: Float> Activation<F> for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    #[inline]
    fn apply(&self, x: F) -> F {
        fast_tanh::tanh(x)
    }
    #[inline]
    fn derivative(&self, _x: F, y: F) -> F {
        F::one() - y * y
    }
}

/// Logistic sigmoid `1 / (1 + e^(−x))`, computed without overflow for any finite `x`;
/// `f'(x) = y(1 − y)`.
///
/// The exponential is [`fast_exp::exp`] (within 2 ulp of `std`'s) and the two cases are a
/// select rather than a branch, so a loop applying it over a slice ([`apply_in_place`])
/// compiles to SIMD code; the result is within a few ulp of the same formula with `std`'s
/// `exp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sigmoid;

impl<F: Float> Activation<F> for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    #[inline]
    fn apply(&self, x: F) -> F {
        // e = exp(−|x|) ∈ [0, 1] never overflows: σ(x) = 1/(1 + e) for x ≥ 0, e/(1 + e) below.
        let e = fast_exp::exp(-x.abs());
        let numerator = if x >= F::zero() { F::one() } else { e };
        numerator / (F::one() + e)
    }
    #[inline]
    fn derivative(&self, _x: F, y: F) -> F {
        y * (F::one() - y)
    }
}

/// Rectified linear unit `max(0, x)`; `f'(x) = 1` where `y > 0`, else 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relu;

impl<F: Float> Activation<F> for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }
    #[inline]
    fn apply(&self, x: F) -> F {
        x.max(F::zero())
    }
    #[inline]
    fn derivative(&self, _x: F, y: F) -> F {
        if y > F::zero() {
            F::one()
        } else {
            F::zero()
        }
    }
}

/// Leaky ReLU `x` for `x > 0`, `slope · x` otherwise (`slope > 0` keeps the sign, so the
/// derivative can be read from `y`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeakyRelu {
    /// Slope for negative inputs; must be positive.
    pub slope: f64,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu { slope: 0.01 }
    }
}

impl<F: Float> Activation<F> for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }
    #[inline]
    fn apply(&self, x: F) -> F {
        if x > F::zero() {
            x
        } else {
            x * F::from_f64_lossy(self.slope)
        }
    }
    #[inline]
    fn derivative(&self, _x: F, y: F) -> F {
        if y > F::zero() {
            F::one()
        } else {
            F::from_f64_lossy(self.slope)
        }
    }
}

/// The identity `f(x) = x`; `f'(x) = 1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity;

impl<F: Float> Activation<F> for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }
    #[inline]
    fn apply(&self, x: F) -> F {
        x
    }
    #[inline]
    fn derivative(&self, _x: F, _y: F) -> F {
        F::one()
    }
}

/// Softsign `x / (1 + |x|)`; `f'(x) = 1 / (1 + |x|)² = (1 − |y|)²`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Softsign;

impl<F: Float> Activation<F> for Softsign {
    fn name(&self) -> &'static str {
        "softsign"
    }
    #[inline]
    fn apply(&self, x: F) -> F {
        x / (F::one() + x.abs())
    }
    #[inline]
    fn derivative(&self, _x: F, y: F) -> F {
        let d = F::one() - y.abs();
        d * d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Central difference of `act` at `x`, in f64.
    fn numeric(act: &dyn Activation<f64>, x: f64) -> f64 {
        let h = 1e-6;
        (act.apply(x + h) - act.apply(x - h)) / (2.0 * h)
    }

    fn check(act: &dyn Activation<f64>, x: f64) {
        let y = act.apply(x);
        let analytic = act.derivative(x, y);
        let from_output = act.derivative(y, y);
        let expected = numeric(act, x);
        assert!(
            (analytic - expected).abs() <= 1e-6 * (1.0 + expected.abs()),
            "{} at {x}: analytic {analytic}, numeric {expected}",
            act.name()
        );
        if !act.needs_input() {
            assert!((from_output - analytic).abs() <= 1e-15, "{}", act.name());
        }
    }

    proptest! {
        #[test]
        fn smooth_derivatives_match_central_differences(x in -8.0_f64..8.0) {
            check(&Tanh, x);
            check(&Sigmoid, x);
            check(&Identity, x);
            check(&Softsign, x);
        }

        #[test]
        fn kinked_derivatives_match_away_from_zero(x in prop_oneof![-8.0_f64..-1e-3, 1e-3_f64..8.0]) {
            check(&Relu, x);
            check(&LeakyRelu { slope: 0.1 }, x);
        }
    }

    #[test]
    fn sigmoid_is_finite_and_saturates_at_extremes() {
        for &x in &[-1000.0_f64, -745.0, 745.0, 1000.0] {
            let y = Activation::<f64>::apply(&Sigmoid, x);
            assert!(y.is_finite());
            assert!((0.0..=1.0).contains(&y));
        }
        assert!(Activation::<f64>::apply(&Sigmoid, -1000.0) < 1e-300);
        assert!((Activation::<f64>::apply(&Sigmoid, 1000.0) - 1.0).abs() < 1e-15);
        let y32 = Activation::<f32>::apply(&Sigmoid, -1000.0_f32);
        assert!(y32.is_finite() && y32 >= 0.0);
    }

    /// σ with `std`'s exponential, in the numerically safe form.
    fn sigmoid_std_f64(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            x.exp() / (1.0 + x.exp())
        }
    }

    #[test]
    fn sigmoid_is_within_a_few_ulp_of_the_std_formula() {
        let mut worst = 0_u64;
        for i in -400_000..=400_000 {
            // Irrational step so the grid does not sit on round numbers.
            let x = f64::from(i) * 1e-4 * std::f64::consts::FRAC_1_SQRT_2;
            let (fast, reference) = (Activation::<f64>::apply(&Sigmoid, x), sigmoid_std_f64(x));
            worst = worst.max(fast.to_bits().abs_diff(reference.to_bits()));
        }
        println!("f64 sigmoid: max {worst} ulp");
        assert!(worst <= 4, "f64 sigmoid: {worst} ulp");
        // f32 against the f64 result rounded to f32.
        let mut worst = 0_u32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 3e-4;
            let fast = Activation::<f32>::apply(&Sigmoid, x);
            let reference = sigmoid_std_f64(f64::from(x)) as f32;
            worst = worst.max(fast.to_bits().abs_diff(reference.to_bits()));
        }
        println!("f32 sigmoid: max {worst} ulp");
        assert!(worst <= 4, "f32 sigmoid: {worst} ulp");
    }

    #[test]
    fn sigmoid_over_a_slice_equals_elementwise_and_is_symmetric() {
        let xs: Vec<f64> = (0..37).map(|i| (f64::from(i) - 18.0) * 0.77).collect();
        let mut ys = xs.clone();
        apply_in_place(&Sigmoid, &mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            assert_eq!(y.to_bits(), Activation::<f64>::apply(&Sigmoid, x).to_bits());
            // σ(−x) = 1 − σ(x), to rounding.
            let mirrored = Activation::<f64>::apply(&Sigmoid, -x);
            assert!((y + mirrored - 1.0).abs() <= 2.0 * f64::EPSILON, "x = {x}");
        }
        assert!(Activation::<f64>::apply(&Sigmoid, f64::NAN).is_nan());
        assert_eq!(
            Activation::<f64>::apply(&Sigmoid, 0.0).to_bits(),
            0.5_f64.to_bits()
        );
    }

    #[test]
    fn activations_work_as_trait_objects() {
        let all: Vec<Box<dyn Activation<f32>>> = vec![
            Box::new(Tanh),
            Box::new(Sigmoid),
            Box::new(Relu),
            Box::new(LeakyRelu::default()),
            Box::new(Identity),
            Box::new(Softsign),
        ];
        let mut values = [0.5_f32, -0.5];
        for act in &all {
            let mut v = values;
            apply_in_place(act.as_ref(), &mut v);
            assert!(v.iter().all(|y| y.is_finite()), "{}", act.name());
        }
        apply_in_place(&Identity, &mut values);
        // The identity is exact: compare bits.
        assert_eq!(values.map(f32::to_bits), [0.5_f32, -0.5].map(f32::to_bits));
    }
}
