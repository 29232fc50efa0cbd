//! Softmax followed by cross-entropy, fused.

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use recur_core::{Error, Float, Result};
use serde::{Deserialize, Serialize};

use crate::kernels::{scale_row, shifted_exp_sum};
use crate::targets::{check_dense_range, check_outputs, RowTarget};
use crate::{Loss, Targets};

/// Softmax outputs with cross-entropy loss, fused: for a row of logits `z` and class `y`,
/// `ℓ = logsumexp(z) − z_y` and `∂ℓ/∂z = softmax(z) − onehot(y)`.
///
/// The row maximum is subtracted before exponentiating, so logits of any finite size
/// (±10⁴ and beyond) give finite, accurate losses. Exponentials use
/// [`fast_exp`](crate::fast_exp), and each contiguous row is processed in three vectorised
/// passes (max; exp and sum, written straight into the gradient buffer; scale), which
/// matters when there are thousands of classes.
///
/// Targets: [`Targets::Classes`] (the usual case; [`IGNORE`](crate::IGNORE) rows count
/// nothing), or [`Targets::Dense`] holding non-negative weights per class (soft labels,
/// e.g. a probability distribution): `ℓ = Σ_o y_o (logsumexp(z) − z_o)` with gradient
/// `softmax(z) · Σ_o y_o − y`.
///
/// ```
/// use ndarray::{array, Array1, Array2};
/// use recur_loss::{Loss, SoftmaxCrossEntropy, Targets};
///
/// let logits = array![[1.0e4_f64, -1.0e4]];
/// let mut row_loss = Array1::zeros(1);
/// let mut d_logits = Array2::zeros((1, 2));
/// SoftmaxCrossEntropy.evaluate(
///     logits.view(), Targets::Classes(&[1]), row_loss.view_mut(), Some(d_logits.view_mut()), 1.0,
/// )?;
/// assert_eq!(row_loss[0], 2.0e4);
/// assert_eq!(d_logits, array![[1.0, -1.0]]);
///
/// let mut probs = Array2::zeros((1, 2));
/// SoftmaxCrossEntropy.predict(array![[0.0_f64, 3.0_f64.ln()]].view(), probs.view_mut())?;
/// assert!((probs[[0, 1]] - 0.75).abs() < 1e-15);
/// # Ok::<(), recur_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftmaxCrossEntropy;

const EVALUATE: &str = "SoftmaxCrossEntropy::evaluate";
const PREDICT: &str = "SoftmaxCrossEntropy::predict";

impl<F: Float> Loss<F> for SoftmaxCrossEntropy {
    fn name(&self) -> &'static str {
        "softmax_cross_entropy"
    }

    /// See [`Loss::evaluate`].
    ///
    /// # Errors
    /// Besides the shape and class-id errors of [`Loss::evaluate`],
    /// [`Error::Empty`] when the logits have rows but no columns, and
    /// [`Error::InvalidConfig`] when dense targets hold a negative or non-finite value.
    fn evaluate(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        mut row_loss: ArrayViewMut1<'_, F>,
        mut d_logits: Option<ArrayViewMut2<'_, F>>,
        grad_scale: F,
    ) -> Result<()> {
        let (rows, classes) = logits.dim();
        check_outputs(
            EVALUATE,
            rows,
            classes,
            row_loss.len(),
            d_logits.as_ref().map(|d| d.dim()),
        )?;
        targets.check(EVALUATE, rows, classes)?;
        if classes == 0 && rows > 0 {
            return Err(Error::Empty {
                op: EVALUATE,
                what: "class axis (logits have 0 columns)",
            });
        }
        check_dense_range(
            &targets,
            F::zero(),
            F::max_value(),
            "softmax cross-entropy needs finite, non-negative dense targets",
        )?;

        for (n, z) in logits.axis_iter(Axis(0)).enumerate() {
            let mut d = d_logits.as_mut().map(|d| d.row_mut(n));
            row_loss[n] = match targets.row(n) {
                RowTarget::Ignored => {
                    if let Some(d) = &mut d {
                        d.fill(F::zero());
                    }
                    F::zero()
                }
                RowTarget::Class(y) => {
                    let (max, sum) = shifted_exp_sum(z, d.as_mut().map(|d| d.view_mut()));
                    if let Some(d) = &mut d {
                        // d holds exp(z − max); turn it into grad_scale · (softmax − onehot).
                        let k = grad_scale / sum;
                        scale_row(d.view_mut(), k);
                        d[y] -= grad_scale;
                    }
                    // logsumexp(z) − z_y, with the max taken out of both terms.
                    sum.ln() - (z[y] - max)
                }
                RowTarget::Dense(y) => {
                    let (max, sum) = shifted_exp_sum(z, d.as_mut().map(|d| d.view_mut()));
                    let ln_sum = sum.ln();
                    let mut mass = F::zero();
                    let mut loss = F::zero();
                    for (&zo, &yo) in z.iter().zip(y) {
                        mass += yo;
                        // Zero-weight classes contribute nothing, even if z_o = −∞.
                        if yo > F::zero() {
                            loss += yo * (ln_sum - (zo - max));
                        }
                    }
                    if let Some(d) = &mut d {
                        let k = grad_scale * mass / sum;
                        d.zip_mut_with(&y, |e, &yo| *e = *e * k - grad_scale * yo);
                    }
                    loss
                }
            };
        }
        Ok(())
    }

    /// Softmax of each row; every output row sums to 1.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `out` and `logits` differ in shape.
    fn predict(&self, logits: ArrayView2<'_, F>, mut out: ArrayViewMut2<'_, F>) -> Result<()> {
        if out.dim() != logits.dim() {
            return Err(Error::shape(PREDICT, logits.shape(), out.shape()));
        }
        for (z, mut p) in logits.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
            let (_, sum) = shifted_exp_sum(z, Some(p.view_mut()));
            let k = F::one() / sum;
            scale_row(p.view_mut(), k);
        }
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
    use ndarray::{array, Array1, Array2, ShapeBuilder};
    use proptest::prelude::*;

    fn eval(
        logits: ArrayView2<'_, f64>,
        targets: Targets<'_, f64>,
        grad_scale: f64,
    ) -> (Array1<f64>, Array2<f64>) {
        let mut row_loss = Array1::from_elem(logits.nrows(), f64::NAN);
        let mut d = Array2::from_elem(logits.dim(), f64::NAN);
        SoftmaxCrossEntropy
            .evaluate(
                logits,
                targets,
                row_loss.view_mut(),
                Some(d.view_mut()),
                grad_scale,
            )
            .unwrap();
        (row_loss, d)
    }

    // Golden values, from this script (Python 3 standard library only):
    //
    //   import math
    //   def xent(z, y):
    //       m = max(z); lse = m + math.log(sum(math.exp(v - m) for v in z))
    //       p = [math.exp(v - lse) for v in z]
    //       return lse - z[y], [pi - (i == y) for i, pi in enumerate(p)]
    //   print(xent([1.0, 2.0, 3.0, -math.inf], 0))
    //   print(xent([0.5, -1.25, 2.0, 0.0], 2))
    //
    // which prints
    //   (2.4076059644443806, [-0.9099694268296196, 0.24472847105479759, 0.6652409557748217, 0.0])
    //   (0.3344986126036624, [0.15969355003210825, 0.02775057793268041, -0.28430316221761553,
    //    0.09685903425282705])
    #[test]
    fn golden_values() {
        let logits = array![[1.0, 2.0, 3.0, f64::NEG_INFINITY], [0.5, -1.25, 2.0, 0.0]];
        let (loss, d) = eval(logits.view(), Targets::Classes(&[0, 2]), 1.0);
        assert!((loss[0] - 2.407_605_964_444_380_6).abs() < 1e-14);
        assert!((loss[1] - 0.334_498_612_603_662_4).abs() < 1e-14);
        let expected = array![
            [
                -0.909_969_426_829_619_6,
                0.244_728_471_054_797_59,
                0.665_240_955_774_821_7,
                0.0
            ],
            [
                0.159_693_550_032_108_25,
                0.027_750_577_932_680_41,
                -0.284_303_162_217_615_53,
                0.096_859_034_252_827_05
            ]
        ];
        assert!((&d - &expected).iter().all(|e| e.abs() < 1e-14), "{d}");
    }

    #[test]
    fn stable_at_huge_logits() {
        let logits = array![[1e4, -1e4], [1e4, -1e4], [-1e4, -1e4], [5e3, 1e4]];
        let (loss, d) = eval(logits.view(), Targets::Classes(&[0, 1, 1, 0]), 1.0);
        assert!(loss.iter().chain(d.iter()).all(|v| v.is_finite()));
        assert_eq!(loss[0], 0.0);
        assert_eq!(loss[1], 2e4);
        assert!((loss[2] - 2.0_f64.ln()).abs() < 1e-15);
        assert_eq!(loss[3], 5e3);
        assert_eq!(d.row(0), array![0.0, 0.0]);
        assert_eq!(d.row(1), array![1.0, -1.0]);

        // f32 too, with many classes so the vectorised path is exercised.
        let mut z = Array2::<f32>::zeros((1, 1000));
        z.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = if i % 2 == 0 { 1e4 } else { -1e4 });
        let loss32 = SoftmaxCrossEntropy
            .total(z.view(), Targets::Classes(&[1]))
            .unwrap();
        assert!(
            (loss32 - (2e4 + 500.0_f32.ln())).abs() / 2e4 < 1e-6,
            "{loss32}"
        );
    }

    #[test]
    fn ignored_rows_give_zero_loss_and_gradient() {
        let logits = array![[3.0, -2.0, 0.5], [1.0, 1.0, 1.0]];
        let ids = [IGNORE, 1];
        let targets = Targets::Classes(&ids);
        let (loss, d) = eval(logits.view(), targets, 1.0);
        assert_eq!(loss[0], 0.0);
        assert!(d.row(0).iter().all(|&v| v == 0.0));
        assert!((loss[1] - 3.0_f64.ln()).abs() < 1e-15);
        assert_eq!(targets.counted_rows(), 1);
    }

    #[test]
    fn grad_scale_scales_only_the_gradient() {
        let logits = array![[0.3, -0.7, 1.1]];
        let (l1, d1) = eval(logits.view(), Targets::Classes(&[2]), 1.0);
        let (l2, d2) = eval(logits.view(), Targets::Classes(&[2]), 0.25);
        assert_eq!(l1, l2);
        assert!((&d1 * 0.25 - &d2).iter().all(|e| e.abs() < 1e-16));
    }

    #[test]
    fn non_contiguous_rows_match_the_fast_path() {
        let standard = random_logits(5, 37, 7);
        let mut column_major = Array2::zeros((5, 37).f());
        column_major.assign(&standard);
        let ids = [0, 36, 5, IGNORE, 17];
        let (fast_loss, fast_d) = eval(standard.view(), Targets::Classes(&ids), 1.0);

        let mut slow_loss = Array1::zeros(5);
        let mut slow_d = Array2::zeros((5, 37).f());
        SoftmaxCrossEntropy
            .evaluate(
                column_major.view(),
                Targets::Classes(&ids),
                slow_loss.view_mut(),
                Some(slow_d.view_mut()),
                1.0,
            )
            .unwrap();
        assert!((&fast_loss - &slow_loss).iter().all(|e| e.abs() < 1e-13));
        assert!((&fast_d - &slow_d).iter().all(|e| e.abs() < 1e-15));
        // Loss without a gradient buffer takes the sum-only path.
        let total = SoftmaxCrossEntropy
            .total(standard.view(), Targets::Classes(&ids))
            .unwrap();
        assert!((total - fast_loss.sum()).abs() < 1e-12);
    }

    #[test]
    fn predict_rows_sum_to_one() {
        let logits = random_logits(6, 8003, 3).mapv(|v| v * 30.0);
        let mut p = Array2::zeros(logits.dim());
        SoftmaxCrossEntropy
            .predict(logits.view(), p.view_mut())
            .unwrap();
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
            assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)));
        }
        let logits32 = logits.mapv(|v| v as f32);
        let mut p32 = Array2::<f32>::zeros(logits.dim());
        SoftmaxCrossEntropy
            .predict(logits32.view(), p32.view_mut())
            .unwrap();
        assert!(p32.rows().into_iter().all(|r| (r.sum() - 1.0).abs() < 1e-4));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let logits = Array2::<f64>::zeros((2, 3));
        let mut row_loss = Array1::zeros(2);
        let loss = SoftmaxCrossEntropy;
        let run = |ids: &[usize], rl: usize, d: Option<(usize, usize)>| {
            let mut rl = Array1::zeros(rl);
            let mut d = d.map(Array2::zeros);
            loss.evaluate(
                logits.view(),
                Targets::Classes(ids),
                rl.view_mut(),
                d.as_mut().map(|d| d.view_mut()),
                1.0,
            )
        };
        assert!(matches!(
            run(&[0, 3], 2, None),
            Err(Error::TokenOutOfRange {
                token: 3,
                vocab_size: 3
            })
        ));
        assert!(matches!(
            run(&[0], 2, None),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            run(&[0, 1], 3, None),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            run(&[0, 1], 2, Some((2, 2))),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(run(&[0, IGNORE], 2, Some((2, 3))).is_ok());

        let bad_dense = array![[0.5, -0.1, 0.6], [0.0, 0.0, 1.0]];
        let r = loss.evaluate(
            logits.view(),
            Targets::Dense(bad_dense.view()),
            row_loss.view_mut(),
            None,
            1.0,
        );
        assert!(matches!(r, Err(Error::InvalidConfig { .. })));
        let wrong_dense = Array2::<f64>::zeros((2, 4));
        let r = loss.evaluate(
            logits.view(),
            Targets::Dense(wrong_dense.view()),
            row_loss.view_mut(),
            None,
            1.0,
        );
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })));

        let empty = Array2::<f64>::zeros((2, 0));
        let r = loss.evaluate(
            empty.view(),
            Targets::Classes(&[IGNORE, IGNORE]),
            row_loss.view_mut(),
            None,
            1.0,
        );
        assert!(matches!(r, Err(Error::Empty { .. })));
        let mut out = Array2::zeros((3, 2));
        assert!(matches!(
            loss.predict(logits.view(), out.view_mut()),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn soft_targets_reduce_to_classes_for_one_hot_rows() {
        let logits = array![[0.2, -1.0, 2.5], [3.0, 0.0, -3.0]];
        let one_hot = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]];
        let (l_c, d_c) = eval(logits.view(), Targets::Classes(&[2, 0]), 0.5);
        let (l_d, d_d) = eval(logits.view(), Targets::Dense(one_hot.view()), 0.5);
        assert!((&l_c - &l_d).iter().all(|e| e.abs() < 1e-15));
        assert!((&d_c - &d_d).iter().all(|e| e.abs() < 1e-15));
    }

    proptest! {
        #[test]
        fn class_gradient_matches_finite_differences(
            rows in 1_usize..4, classes in 1_usize..12, seed in any::<u64>(), scale in 0.1_f64..3.0,
        ) {
            let logits = random_logits(rows, classes, seed);
            let ids: Vec<usize> = (0..rows)
                .map(|n| if n == 2 { IGNORE } else { (seed as usize / (n + 1)) % classes })
                .collect();
            assert_gradient_matches(&SoftmaxCrossEntropy, logits.view(), Targets::Classes(&ids), scale);
        }

        #[test]
        fn soft_target_gradient_matches_finite_differences(
            rows in 1_usize..4, classes in 1_usize..12, seed in any::<u64>(),
        ) {
            let logits = random_logits(rows, classes, seed);
            let weights = random_logits(rows, classes, seed ^ 0x5eed).mapv(|v| v.abs() / 3.0);
            assert_gradient_matches(&SoftmaxCrossEntropy, logits.view(), Targets::Dense(weights.view()), 1.0);
        }
    }
}
