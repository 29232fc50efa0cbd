//! Squared error on the outputs of an element-wise activation.

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};
use recur_core::{Activation, Error, Float, Identity, Result};
use serde::{Deserialize, Serialize};

use crate::kernels::elementwise;
use crate::targets::check_outputs;
use crate::{Loss, Targets};

/// Squared error of the outputs `ŷ = A(z)` of an element-wise activation:
/// `ℓ_n = ½ Σ_o (ŷ_no − y_no)²`, with gradient `(ŷ − y) · A'(z)`.
///
/// "Mean" refers to the usual [`Reduction::Mean`](crate::Reduction::Mean) over rows; the
/// per-row value sums over outputs, with the ½ that makes the gradient free of a 2.
/// `A'` is computed from the output `ŷ` when the activation allows it
/// ([`Activation::needs_input`] is `false`), as the classic hand-written networks do.
///
/// `MeanSquaredError<Sigmoid>` is the output layer and error of the classic binary-addition
/// network: its gradient is that network's `(y − ŷ)·ŷ(1 − ŷ)` output delta with the sign of
/// a gradient (the network adds its delta, gradient descent subtracts ours).
///
/// Targets: [`Targets::Dense`] of shape `[N, O]`; [`Targets::Classes`] also works and reads
/// each id as a one-hot row.
///
/// ```
/// use ndarray::{array, Array1, Array2};
/// use recur_core::Sigmoid;
/// use recur_loss::{Loss, MeanSquaredError, Targets};
///
/// let loss = MeanSquaredError::new(Sigmoid);
/// let logits = array![[0.0_f64]];
/// let target = array![[1.0]];
/// let mut row_loss = Array1::zeros(1);
/// let mut d_logits = Array2::zeros((1, 1));
/// loss.evaluate(
///     logits.view(), Targets::Dense(target.view()), row_loss.view_mut(), Some(d_logits.view_mut()), 1.0,
/// )?;
/// // ŷ = 0.5: ℓ = ½(0.5 − 1)² and ∂ℓ/∂z = (0.5 − 1)·0.5·0.5.
/// assert_eq!(row_loss[0], 0.125);
/// assert_eq!(d_logits[[0, 0]], -0.125);
/// # Ok::<(), recur_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeanSquaredError<A = Identity> {
    /// The output activation `A`, applied to the logits.
    pub activation: A,
}

impl<A> MeanSquaredError<A> {
    /// Squared error on the outputs of `activation`.
    pub const fn new(activation: A) -> Self {
        MeanSquaredError { activation }
    }
}

const EVALUATE: &str = "MeanSquaredError::evaluate";
const PREDICT: &str = "MeanSquaredError::predict";

impl<F: Float, A: Activation<F>> Loss<F> for MeanSquaredError<A> {
    fn name(&self) -> &'static str {
        "mean_squared_error"
    }

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
        let act = &self.activation;
        let from_output = !act.needs_input();
        let half = F::from_f64_lossy(0.5);
        elementwise(logits, &targets, row_loss, d_logits, grad_scale, |z, y| {
            let y_hat = act.apply(z);
            let diff = y_hat - y;
            // With the output enough, pass it as the "input" too, as Activation documents.
            let slope = act.derivative(if from_output { y_hat } else { z }, y_hat);
            (half * diff * diff, diff * slope)
        });
        Ok(())
    }

    /// `A(z)` element-wise.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `out` and `logits` differ in shape.
    fn predict(&self, logits: ArrayView2<'_, F>, out: ArrayViewMut2<'_, F>) -> Result<()> {
        if out.dim() != logits.dim() {
            return Err(Error::shape(PREDICT, logits.shape(), out.shape()));
        }
        Zip::from(out)
            .and(logits)
            .for_each(|o, &z| *o = self.activation.apply(z));
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
    use recur_core::{Sigmoid, Softsign, Tanh};

    /// An activation whose derivative needs its input (x³ is not invertible from y cheaply
    /// enough to bother), to exercise that branch.
    #[derive(Debug, Clone, Copy)]
    struct Cube;

    impl Activation<f64> for Cube {
        fn name(&self) -> &'static str {
            "cube"
        }
        fn apply(&self, x: f64) -> f64 {
            x * x * x
        }
        fn derivative(&self, x: f64, _y: f64) -> f64 {
            3.0 * x * x
        }
        fn needs_input(&self) -> bool {
            true
        }
    }

    fn eval<A: Activation<f64>>(
        act: A,
        logits: ArrayView2<'_, f64>,
        targets: Targets<'_, f64>,
    ) -> (Array1<f64>, Array2<f64>) {
        let mut row_loss = Array1::from_elem(logits.nrows(), f64::NAN);
        let mut d = Array2::from_elem(logits.dim(), f64::NAN);
        MeanSquaredError::new(act)
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

    // Golden values, from this script (Python 3 standard library only):
    //
    //   import math
    //   sig = lambda z: 1 / (1 + math.exp(-z))
    //   def mse(z, y, f, df):
    //       yh = [f(v) for v in z]
    //       return (0.5 * sum((a - b) ** 2 for a, b in zip(yh, y)),
    //               [(a - b) * df(a) for a, b in zip(yh, y)])
    //   print(mse([0.5, -1.0, 2.0], [1.0, 0.0, 1.0], sig, lambda a: a * (1 - a)))
    //   print(mse([0.5, -1.0, 2.0], [1.0, 0.0, 1.0], math.tanh, lambda a: 1 - a * a))
    //
    // which prints
    //   (0.11453789067183762, [-0.08872345867463687, 0.052877092784266715, -0.012515542173676753])
    //   (0.4353188129476143, [-0.4230167422741337, -0.3198500042246123, -0.0025414811396079423])
    #[test]
    fn golden_values() {
        let logits = array![[0.5, -1.0, 2.0]];
        let y = array![[1.0, 0.0, 1.0]];
        let (loss, d) = eval(Sigmoid, logits.view(), Targets::Dense(y.view()));
        assert!((loss[0] - 0.114_537_890_671_837_62).abs() < 1e-15);
        let expected = array![[
            -0.088_723_458_674_636_87,
            0.052_877_092_784_266_715,
            -0.012_515_542_173_676_753
        ]];
        assert!((&d - &expected).iter().all(|e| e.abs() < 1e-15), "{d}");

        let (loss, d) = eval(Tanh, logits.view(), Targets::Dense(y.view()));
        assert!((loss[0] - 0.435_318_812_947_614_3).abs() < 1e-15);
        let expected = array![[
            -0.423_016_742_274_133_7,
            -0.319_850_004_224_612_3,
            -0.002_541_481_139_607_942_3
        ]];
        assert!((&d - &expected).iter().all(|e| e.abs() < 1e-15), "{d}");
    }

    #[test]
    fn sigmoid_gradient_is_the_binary_addition_output_delta_negated() {
        // The classic network: layer_2 = σ(z), layer_2_delta = (y − layer_2)·layer_2·(1 − layer_2).
        let logits = array![[-0.3], [1.7], [0.05]];
        let y = array![[1.0], [0.0], [1.0]];
        let (loss, d) = eval(Sigmoid, logits.view(), Targets::Dense(y.view()));
        for n in 0..3 {
            let layer_2 = 1.0 / (1.0 + (-logits[[n, 0]]).exp());
            let error = y[[n, 0]] - layer_2;
            let layer_2_delta = error * layer_2 * (1.0 - layer_2);
            assert!((d[[n, 0]] + layer_2_delta).abs() < 1e-16);
            assert!((loss[n] - 0.5 * error * error).abs() < 1e-16);
        }
    }

    #[test]
    fn class_targets_read_as_one_hot_and_ignore_rows() {
        let logits = array![[0.2, -0.4, 1.0], [0.3, 0.3, 0.3]];
        let one_hot = array![[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]];
        let (l_c, d_c) = eval(Tanh, logits.view(), Targets::Classes(&[1, IGNORE]));
        let (l_d, d_d) = eval(Tanh, logits.view(), Targets::Dense(one_hot.view()));
        assert_eq!(l_c[0], l_d[0]);
        assert_eq!(d_c.row(0), d_d.row(0));
        assert_eq!(l_c[1], 0.0);
        assert!(d_c.row(1).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn default_is_identity_and_predict_applies_the_activation() {
        let loss = MeanSquaredError::default();
        assert_eq!(loss, MeanSquaredError::new(Identity));
        let logits = array![[1.5, -2.0]];
        let mut out = Array2::zeros((1, 2));
        Loss::<f64>::predict(&loss, logits.view(), out.view_mut()).unwrap();
        assert_eq!(out, logits);
        MeanSquaredError::new(Sigmoid)
            .predict(logits.view(), out.view_mut())
            .unwrap();
        assert!((out[[0, 0]] - 1.0 / (1.0 + (-1.5_f64).exp())).abs() < 1e-16);
        let mut wrong = Array2::zeros((2, 2));
        assert!(matches!(
            MeanSquaredError::new(Sigmoid).predict(logits.view(), wrong.view_mut()),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let loss = MeanSquaredError::new(Sigmoid);
        let logits = Array2::<f64>::zeros((2, 3));
        let y = Array2::<f64>::zeros((2, 2));
        let mut row_loss = Array1::zeros(2);
        let r = loss.evaluate(
            logits.view(),
            Targets::Dense(y.view()),
            row_loss.view_mut(),
            None,
            1.0,
        );
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })));
        let r = loss.evaluate(
            logits.view(),
            Targets::Classes(&[0, 7]),
            row_loss.view_mut(),
            None,
            1.0,
        );
        assert!(matches!(
            r,
            Err(Error::TokenOutOfRange {
                token: 7,
                vocab_size: 3
            })
        ));
        let mut short = Array1::zeros(1);
        let r = loss.evaluate(
            logits.view(),
            Targets::Classes(&[0, 1]),
            short.view_mut(),
            None,
            1.0,
        );
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })));
        let mut d = Array2::zeros((3, 2));
        let r = loss.evaluate(
            logits.view(),
            Targets::Classes(&[0, 1]),
            row_loss.view_mut(),
            Some(d.view_mut()),
            1.0,
        );
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })));
    }

    proptest! {
        #[test]
        fn gradient_matches_finite_differences(
            rows in 1_usize..4, outputs in 1_usize..6, seed in any::<u64>(), scale in 0.1_f64..3.0,
        ) {
            let logits = random_logits(rows, outputs, seed);
            let y = random_logits(rows, outputs, seed.rotate_left(17)).mapv(|v| v / 4.0);
            let targets = Targets::Dense(y.view());
            assert_gradient_matches(&MeanSquaredError::new(Identity), logits.view(), targets, scale);
            assert_gradient_matches(&MeanSquaredError::new(Sigmoid), logits.view(), targets, scale);
            assert_gradient_matches(&MeanSquaredError::new(Tanh), logits.view(), targets, scale);
            // Softsign's second derivative jumps at 0; keep the stencil off the kink.
            let off_kink = logits.mapv(|v| if v.abs() < 1e-2 { v + 2e-2 } else { v });
            assert_gradient_matches(&MeanSquaredError::new(Softsign), off_kink.view(), targets, scale);
            // x³ grows fast; keep its inputs in [−1, 1] so rounding in the finite
            // differences stays well below the tolerance.
            let small = logits.mapv(|v| v / 4.0);
            assert_gradient_matches(&MeanSquaredError::new(Cube), small.view(), targets, scale);
        }
    }
}
