//! The `Loss` trait.

use ndarray::{Array1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use recur_core::{Float, Result};

use crate::Targets;

/// A per-row loss on the logits `z` of an affine readout, together with its output link.
///
/// A loss owns the function that turns logits into outputs (softmax, sigmoid, an
/// [`Activation`](recur_core::Activation)), so the gradient it returns is taken with respect
/// to the logits, the readout's pre-activation. Fusing the link with the loss is what makes
/// softmax + cross-entropy both stable and cheap (`softmax(z) − onehot(y)`).
///
/// Logits have shape `[N, O]`: `N` rows (time steps × batch, flattened), `O` outputs.
/// The trait is object safe: an engine may hold a `Box<dyn Loss<F>>`.
///
/// ```
/// use ndarray::{array, Array1, Array2};
/// use recur_loss::{Loss, Reduction, SoftmaxCrossEntropy, Targets};
///
/// let loss: Box<dyn Loss<f64>> = Box::new(SoftmaxCrossEntropy);
/// let logits = array![[0.0, 0.0], [2.0, -1.0]];
/// let ids = [1, 0];
/// let targets = Targets::Classes(&ids);
///
/// let mut row_loss = Array1::zeros(2);
/// let mut d_logits = Array2::zeros((2, 2));
/// let scale = Reduction::Mean.scale(targets.counted_rows());
/// loss.evaluate(logits.view(), targets, row_loss.view_mut(), Some(d_logits.view_mut()), scale)?;
///
/// assert!((row_loss[0] - 2.0_f64.ln()).abs() < 1e-12);
/// // Each gradient row of softmax cross-entropy sums to zero.
/// assert!(d_logits.rows().into_iter().all(|r| r.sum().abs() < 1e-12));
/// assert!((loss.total(logits.view(), targets)? - row_loss.sum()).abs() < 1e-12);
/// # Ok::<(), recur_core::Error>(())
/// ```
pub trait Loss<F: Float>: std::fmt::Debug + Send + Sync {
    /// Short lower-case name, as written in checkpoints and reports.
    fn name(&self) -> &'static str;

    /// Writes each row's loss `ℓ_n` into `row_loss` (`[N]`) and, when `d_logits` (`[N, O]`)
    /// is given, overwrites it with `grad_scale · ∂ℓ_n/∂z_n`. Rows whose target is
    /// [`IGNORE`](crate::IGNORE) get loss 0 and a zero gradient.
    ///
    /// Non-finite logits are not rejected here; they give non-finite losses, which the
    /// caller is expected to detect.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](recur_core::Error::ShapeMismatch) when `targets`, `row_loss`
    /// or `d_logits` do not match the `[N, O]` logits,
    /// [`Error::TokenOutOfRange`](recur_core::Error::TokenOutOfRange) for a class id that
    /// is neither `< O` nor `IGNORE`, and
    /// [`Error::InvalidConfig`](recur_core::Error::InvalidConfig) for targets a loss cannot
    /// take (see each implementation). Nothing is written when an error is returned.
    fn evaluate(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        row_loss: ArrayViewMut1<'_, F>,
        d_logits: Option<ArrayViewMut2<'_, F>>,
        grad_scale: F,
    ) -> Result<()>;

    /// Writes the model's outputs for `logits` (softmax probabilities, sigmoid outputs, …)
    /// into `out`, of the same shape `[N, O]`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](recur_core::Error::ShapeMismatch) when `out` and `logits`
    /// differ in shape.
    fn predict(&self, logits: ArrayView2<'_, F>, out: ArrayViewMut2<'_, F>) -> Result<()>;

    /// The summed loss over all rows (allocates a buffer of `N` values).
    ///
    /// # Errors
    /// As [`Loss::evaluate`].
    fn total(&self, logits: ArrayView2<'_, F>, targets: Targets<'_, F>) -> Result<F> {
        let mut row_loss = Array1::zeros(logits.nrows());
        self.evaluate(logits, targets, row_loss.view_mut(), None, F::one())?;
        Ok(row_loss.sum())
    }
}

impl<F: Float, L: Loss<F> + ?Sized> Loss<F> for Box<L> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn evaluate(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        row_loss: ArrayViewMut1<'_, F>,
        d_logits: Option<ArrayViewMut2<'_, F>>,
        grad_scale: F,
    ) -> Result<()> {
        (**self).evaluate(logits, targets, row_loss, d_logits, grad_scale)
    }
    fn predict(&self, logits: ArrayView2<'_, F>, out: ArrayViewMut2<'_, F>) -> Result<()> {
        (**self).predict(logits, out)
    }
}

impl<F: Float, L: Loss<F> + ?Sized> Loss<F> for &L {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn evaluate(
        &self,
        logits: ArrayView2<'_, F>,
        targets: Targets<'_, F>,
        row_loss: ArrayViewMut1<'_, F>,
        d_logits: Option<ArrayViewMut2<'_, F>>,
        grad_scale: F,
    ) -> Result<()> {
        (**self).evaluate(logits, targets, row_loss, d_logits, grad_scale)
    }
    fn predict(&self, logits: ArrayView2<'_, F>, out: ArrayViewMut2<'_, F>) -> Result<()> {
        (**self).predict(logits, out)
    }
}
