//! Sigmoid followed by binary cross-entropy, fused.

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};
use recur_core::{Activation, Error, Float, Result, Sigmoid};
use serde::{Deserialize, Serialize};

use crate::kernels::elementwise;
use crate::targets::{check_dense_range, check_outputs};
use crate::{Loss, Targets};

/// Independent sigmoid outputs with binary cross-entropy, fused:
/// `ℓ_n = Σ_o [softplus(z_no) − y_no·z_no]`, which equals
/// `−Σ_o [y log σ(z) + (1 − y) log(1 − σ(z))]`; gradient `σ(z) − y`.
///
/// `softplus(z) = max(z, 0) + log1p(e^(−|z|))` never exponentiates a positive number, so
/// the loss is finite and accurate for any finite logit, where `log σ(z)` computed from a
/// saturated `σ(z)` would give `−∞`.
///
/// Targets: [`Targets::Dense`] with values in `[0, 1]` (soft labels allowed), or
/// [`Targets::Classes`], read as one-hot rows.
///
/// ```
/// use ndarray::{array, Array1, Array2};
/// use recur_loss::{Loss, SigmoidBinaryCrossEntropy, Targets};
///
/// let logits = array![[0.0_f64, 800.0, -800.0]];
/// let y = array![[1.0, 1.0, 1.0]];
/// let mut row_loss = Array1::zeros(1);
/// let mut d_logits = Array2::zeros((1, 3));
/// SigmoidBinaryCrossEntropy.evaluate(
///     logits.view(), Targets::Dense(y.view()), row_loss.view_mut(), Some(d_logits.view_mut()), 1.0,
/// )?;
/// // ln 2 for the undecided output, 0 for the confident right one, 800 for the wrong one.
/// assert!((row_loss[0] - (2.0_f64.ln() + 800.0)).abs() < 1e-12);
/// assert_eq!(d_logits, array![[-0.5, 0.0, -1.0]]);
/// # Ok::<(), recur_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigmoidBinaryCrossEntropy;

const EVALUATE: &str = "SigmoidBinaryCrossEntropy::evaluate";
const PREDICT: &str = "SigmoidBinaryCrossEntropy::predict";

impl<F: Float> Loss<F> for SigmoidBinaryCrossEntropy {
    fn name(&self) -> &'static str {
        "sigmoid_binary_cross_entropy"
    }

    /// See [`Loss::evaluate`].
    ///
    /// # Errors
    /// Besides the shape and class-id errors of [`Loss::evaluate`],
    /// [`Error::InvalidConfig`] when a dense target lies outside `[0, 1]` or is NaN.
    fn evaluate(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        row_loss: ArrayViewMut1<'_, F>,
        d_logits: Option<ArrayViewMut2<'_, F>>,
        grad_scale: F,
    ) -> Result<()> {
        let (rows, outputs) = logits.dim();
        check_outputs(
            EVALUATE,
            rows,
            outputs,
            row_loss.len(),
            d_logits.as_ref().map(|d| d.dim()),
        )?;
        targets.check(EVALUATE, rows, outputs)?;
        check_dense_range(
            &targets,
            F::zero(),
            F::one(),
            "binary cross-entropy needs dense targets in [0, 1]",
        )?;
        elementwise(logits, &targets, row_loss, d_logits, grad_scale, |z, y| {
            // One exponential serves both the softplus and the sigmoid.
            let e = (-z.abs()).exp();
            let softplus = z.max(F::zero()) + e.ln_1p();
            let sigma = if z >= F::zero() {
                F::one() / (F::one() + e)
            } else {
                e / (F::one() + e)
            };
            (softplus - y * z, sigma - y)
        });
        Ok(())
    }

    /// `σ(z)` element-wise.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `out` and `logits` differ in shape.
    fn predict(&self, logits: ArrayView2<'_, F>, out: ArrayViewMut2<'_, F>) -> Result<()> {
        if out.dim() != logits.dim() {
            return Err(Error::shape(PREDICT, logits.shape(), out.shape()));
        }
        Zip::from(out)
            .and(logits)
            .for_each(|o, &z| *o = Sigmoid.apply(z));
        Ok(())
    }
}

#[cfg(test)]
// Exact comparisons are deliberate: special values and exactly representable results.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::test_util::{assert_gradient_matches, random_logits};
    use crate::IGNORE;
    use ndarray::{array, Array1, Array2};
    use proptest::prelude::*;

    fn eval(logits: ArrayView2<'_, f64>, targets: Targets<'_, f64>) -> (Array1<f64>, Array2<f64>) {
        let mut row_loss = Array1::from_elem(logits.nrows(), f64::NAN);
        let mut d = Array2::from_elem(logits.dim(), f64::NAN);
        SigmoidBinaryCrossEntropy
            .evaluate(
                logits,
                targets,
                row_loss.view_mut(),
                Some(d.view_mut()),
                1.0,
            )
            .unwrap();
        (row_loss, d)
    }

    // Golden values, from this script (Python 3 standard library only); the last line checks
    // the softplus form against the textbook −[y log p + (1 − y) log(1 − p)]:
    //
    //   import math
    //   sig = lambda z: 1 / (1 + math.exp(-z))
    //   sp = lambda v: max(v, 0) + math.log1p(math.exp(-abs(v)))
    //   z = [2.0, -3.0, 0.5, 0.0]; y = [1.0, 0.0, 0.25, 0.5]
    //   print(sum(sp(a) - b * a for a, b in zip(z, y)), [sig(a) - b for a, b in zip(z, y)])
    //   print(sum(-(b * math.log(sig(a)) + (1 - b) * math.log(1 - sig(a))) for a, b in zip(z, y)))
    //
    // which prints
    //   1.7177395273567666 [-0.11920292202211769, 0.04742587317756678, 0.3724593312018546, 0.0]
    //   1.7177395273567666
    #[test]
    fn golden_values() {
        let logits = array![[2.0, -3.0, 0.5, 0.0]];
        let y = array![[1.0, 0.0, 0.25, 0.5]];
        let (loss, d) = eval(logits.view(), Targets::Dense(y.view()));
        assert!((loss[0] - 1.717_739_527_356_766_6).abs() < 1e-14);
        let expected = array![[
            -0.119_202_922_022_117_69,
            0.047_425_873_177_566_78,
            0.372_459_331_201_854_6,
            0.0
        ]];
        assert!((&d - &expected).iter().all(|e| e.abs() < 1e-15), "{d}");
    }

    #[test]
    fn stable_for_large_logits() {
        let logits = array![[1e4, -1e4, 1e4, -1e4]];
        let y = array![[1.0, 0.0, 0.0, 1.0]];
        let (loss, d) = eval(logits.view(), Targets::Dense(y.view()));
        assert_eq!(loss[0], 2e4);
        assert_eq!(d, array![[0.0, 0.0, 1.0, -1.0]]);
        let logits32 = logits.mapv(|v| v as f32);
        let y32 = y.mapv(|v| v as f32);
        let total = SigmoidBinaryCrossEntropy
            .total(logits32.view(), Targets::Dense(y32.view()))
            .unwrap();
        assert_eq!(total, 2e4_f32);
    }

    #[test]
    fn class_targets_read_as_one_hot_and_ignore_rows() {
        let logits = array![[0.2, -0.4], [1.0, 2.0]];
        let (loss, d) = eval(logits.view(), Targets::Classes(&[IGNORE, 1]));
        let (l_d, d_d) = eval(
            logits.view(),
            Targets::Dense(array![[0.0, 0.0], [0.0, 1.0]].view()),
        );
        assert_eq!(loss[0], 0.0);
        assert!(d.row(0).iter().all(|&v| v == 0.0));
        assert_eq!(loss[1], l_d[1]);
        assert_eq!(d.row(1), d_d.row(1));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let logits = Array2::<f64>::zeros((1, 2));
        let mut row_loss = Array1::zeros(1);
        for bad in [
            array![[0.5, 1.5]],
            array![[-0.1, 0.0]],
            array![[f64::NAN, 0.0]],
        ] {
            let r = SigmoidBinaryCrossEntropy.evaluate(
                logits.view(),
                Targets::Dense(bad.view()),
                row_loss.view_mut(),
                None,
                1.0,
            );
            assert!(matches!(r, Err(Error::InvalidConfig { .. })));
        }
        let r = SigmoidBinaryCrossEntropy.evaluate(
            logits.view(),
            Targets::Classes(&[2]),
            row_loss.view_mut(),
            None,
            1.0,
        );
        assert!(matches!(r, Err(Error::TokenOutOfRange { .. })));
        let mut out = Array2::zeros((1, 3));
        assert!(matches!(
            SigmoidBinaryCrossEntropy.predict(logits.view(), out.view_mut()),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn predict_is_the_sigmoid() {
        let logits = array![[0.0_f64, 3.0, -800.0]];
        let mut out = Array2::zeros((1, 3));
        SigmoidBinaryCrossEntropy
            .predict(logits.view(), out.view_mut())
            .unwrap();
        assert_eq!(out[[0, 0]], 0.5);
        assert!((out[[0, 1]] - 1.0 / (1.0 + (-3.0_f64).exp())).abs() < 1e-16);
        assert!(out[[0, 2]] >= 0.0 && out[[0, 2]] < 1e-300);
    }

    proptest! {
        #[test]
        fn gradient_matches_finite_differences(
            rows in 1_usize..4, outputs in 1_usize..6, seed in any::<u64>(), scale in 0.1_f64..3.0,
        ) {
            let logits = random_logits(rows, outputs, seed);
            let y = random_logits(rows, outputs, !seed).mapv(|v| (v + 4.0) / 8.0);
            assert_gradient_matches(&SigmoidBinaryCrossEntropy, logits.view(), Targets::Dense(y.view()), scale);
        }
    }
}
